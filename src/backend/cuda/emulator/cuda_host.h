// CUDA's execution model on the CPU, for testing kernels on machines with
// no GPU. Every thread of a block is a fiber (ucontext) on the launching
// thread; blocks run one after another. __syncthreads waits for the
// block's live threads, a warp shuffle exchanges values through a slot per
// lane between two waits of the warp. Shared memory is a static local
// (blocks never overlap); dynamic shared memory is one buffer per launch.
// Everything global is per OS thread, so tests may launch in parallel.
// Slow and exact; it finds wrong indexing and arithmetic, not races.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <cstdlib>
#include <vector>
#include <ucontext.h>
#include <utility>

#define SWITCHYARD_EMULATION 1
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static thread_local
#define DYNAMIC_SHARED(type, name) type* name = (type*)emu::dynamic_shared()

struct emu_dim3 {
    unsigned x, y, z;
};
struct alignas(16) float4 {
    float x, y, z, w;
};
struct alignas(16) uint4 {
    unsigned x, y, z, w;
};

namespace emu {

const int WARP_SIZE = 32;
const size_t STACK = 256 * 1024;

struct Fiber {
    ucontext_t ctx;
    std::vector<char> stack;
    bool done = false;
    unsigned tid = 0;
};

struct Gate {
    int arrived = 0;
    int alive = 0;
    unsigned long generation = 0;
};

struct Block {
    std::vector<Fiber> fibers;
    Gate block_gate;
    std::vector<Gate> warp_gates;
    std::vector<uint64_t> slots;  // one per thread, for shuffles
    ucontext_t scheduler;
    int current = 0;
};

inline Block*& block() {
    static thread_local Block* b = nullptr;
    return b;
}

inline std::vector<char>& dynamic_buffer() {
    static thread_local std::vector<char> buf;
    return buf;
}

inline void* dynamic_shared() { return dynamic_buffer().data(); }

inline void yield() {
    Block* b = block();
    swapcontext(&b->fibers[b->current].ctx, &b->scheduler);
}

inline void wait(Gate& g) {
    g.arrived++;
    if (g.arrived >= g.alive) {
        g.arrived = 0;
        g.generation++;
        return;
    }
    unsigned long gen = g.generation;
    while (g.generation == gen) yield();
}

// A finished thread no longer counts at its barriers.
inline void leave(Gate& g) {
    g.alive--;
    if (g.alive > 0 && g.arrived >= g.alive) {
        g.arrived = 0;
        g.generation++;
    }
}

}  // namespace emu

// The running fiber's indices: the scheduler sets threadIdx before it
// switches to a fiber.
thread_local emu_dim3 threadIdx, blockIdx, blockDim, gridDim;

inline void __syncthreads() { emu::wait(emu::block()->block_gate); }

template <typename T>
inline T emu_shuffle(T v, int src_lane) {
    emu::Block* b = emu::block();
    unsigned warp = threadIdx.x / emu::WARP_SIZE;
    unsigned lane = threadIdx.x % emu::WARP_SIZE;
    uint64_t slot = 0;
    std::memcpy(&slot, &v, sizeof(T));
    b->slots[threadIdx.x] = slot;
    emu::wait(b->warp_gates[warp]);
    unsigned from = warp * emu::WARP_SIZE + (unsigned)(src_lane & 31);
    T r;
    uint64_t got = from < blockDim.x ? b->slots[from] : slot;
    std::memcpy(&r, &got, sizeof(T));
    emu::wait(b->warp_gates[warp]);
    (void)lane;
    return r;
}

template <typename T>
inline T __shfl_xor_sync(unsigned, T v, int mask) {
    return emu_shuffle(v, (int)(threadIdx.x % emu::WARP_SIZE) ^ mask);
}

template <typename T>
inline T __shfl_sync(unsigned, T v, int lane) {
    return emu_shuffle(v, lane);
}

inline float __uint_as_float(unsigned u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
inline float __int_as_float(int u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
inline unsigned __float_as_uint(float f) {
    unsigned u;
    std::memcpy(&u, &f, 4);
    return u;
}
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline int min(int a, int b) { return a < b ? a : b; }

// IEEE half from/to single, round to nearest even: what `cvt.rn.f16.f32`
// and `cvt.f32.f16` do on the device.
inline float f16_to_f32(unsigned short h) {
    _Float16 x;
    std::memcpy(&x, &h, 2);
    return (float)x;
}
inline unsigned short f32_to_f16(float f) {
    _Float16 x = (_Float16)f;
    unsigned short h;
    std::memcpy(&h, &x, 2);
    return h;
}

#undef INFINITY

namespace emu {

typedef void (*Entry)(void**);

thread_local Entry current_entry;
thread_local void** current_args;

inline void fiber_main(int index) {
    Block* b = block();
    Fiber& f = b->fibers[index];
    current_entry(current_args);
    f.done = true;
    leave(b->block_gate);
    leave(b->warp_gates[f.tid / WARP_SIZE]);
    swapcontext(&f.ctx, &b->scheduler);
}

inline void trampoline(unsigned hi, unsigned lo) {
    (void)hi;
    fiber_main((int)lo);
}

// Runs one kernel over its grid; returns 0.
inline int run(Entry entry, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned shared,
               void** args) {
    current_entry = entry;
    current_args = args;
    blockDim = {bx, 1, 1};
    gridDim = {gx, gy, gz};
    dynamic_buffer().assign(shared + 16, 0);
    Block b;
    b.fibers.resize(bx);
    for (auto& f : b.fibers) f.stack.resize(STACK);
    b.slots.assign(bx, 0);
    block() = &b;
    for (unsigned z = 0; z < gz; z++)
        for (unsigned y = 0; y < gy; y++)
            for (unsigned x = 0; x < gx; x++) {
                blockIdx = {x, y, z};
                unsigned warps = (bx + WARP_SIZE - 1) / WARP_SIZE;
                b.block_gate = Gate{0, (int)bx, 0};
                b.warp_gates.assign(warps, Gate{});
                for (unsigned w = 0; w < warps; w++) {
                    unsigned lanes = bx - w * WARP_SIZE;
                    b.warp_gates[w].alive = (int)(lanes < (unsigned)WARP_SIZE ? lanes : WARP_SIZE);
                }
                for (unsigned t = 0; t < bx; t++) {
                    Fiber& f = b.fibers[t];
                    f.done = false;
                    f.tid = t;
                    getcontext(&f.ctx);
                    f.ctx.uc_stack.ss_sp = f.stack.data();
                    f.ctx.uc_stack.ss_size = f.stack.size();
                    f.ctx.uc_link = &b.scheduler;
                    makecontext(&f.ctx, (void (*)())trampoline, 2, 0u, t);
                }
                // Round-robin until every thread of the block is done.
                bool any = true;
                while (any) {
                    any = false;
                    for (unsigned t = 0; t < bx; t++) {
                        if (b.fibers[t].done) continue;
                        any = true;
                        b.current = (int)t;
                        threadIdx = {t, 0, 0};
                        swapcontext(&b.scheduler, &b.fibers[t].ctx);
                    }
                }
            }
    block() = nullptr;
    return 0;
}

}  // namespace emu
