// Shared by every kernel file. NVRTC compiles kernels/*.cu as one program,
// this file first, so the kernels need no header (not even cuda_fp16.h:
// half-precision conversions are single PTX instructions here).

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef signed char i8;

// FMT_* (the weight formats) and KV_* (the KV cache element types) come
// before this file, emitted from the Rust tables that number them
// (`backend/cuda/compile.rs`).

#define WARP 32
#define INFINITY __int_as_float(0x7f800000)
#define FULL_MASK 0xffffffffu

// The host emulator used by tests (src/backend/cuda/emulator) brings its
// own conversions and dynamic shared memory.
#ifndef SWITCHYARD_EMULATION
#define DYNAMIC_SHARED(type, name) extern __shared__ type name[]

__device__ __forceinline__ float f16_to_f32(u16 h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}

__device__ __forceinline__ u16 f32_to_f16(float f) {
    u16 h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}
#endif

__device__ __forceinline__ float bf16_to_f32(u16 h) {
    return __uint_as_float(((u32)h) << 16);
}

// Round to nearest even, NaN kept a (quiet) NaN: what the `half` crate does
// on the CPU side.
__device__ __forceinline__ u16 f32_to_bf16(float f) {
    u32 u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        return (u16)((u >> 16) | 0x40u);
    }
    u += 0x7fffu + ((u >> 16) & 1u);
    return (u16)(u >> 16);
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = WARP / 2; o > 0; o >>= 1) {
        v += __shfl_xor_sync(FULL_MASK, v, o);
    }
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = WARP / 2; o > 0; o >>= 1) {
        v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, o));
    }
    return v;
}

// Sum over a block of `blockDim.x` threads (a multiple of 32, at most
// 1024); every thread gets the result. `scratch` holds 32 floats.
__device__ float block_sum(float v, float* scratch) {
    int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;
    int warps = blockDim.x / WARP;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float t = lane < warps ? scratch[lane] : 0.0f;
    return warp_sum(t);
}

// Blocks of the weight formats are 2-byte aligned: read halves, never
// words, out of them.
__device__ __forceinline__ float half_at(const u8* p) {
    return f16_to_f32(*(const u16*)p);
}

__device__ __forceinline__ u32 u32_at(const u8* p) {
    const u16* h = (const u16*)p;
    return (u32)h[0] | ((u32)h[1] << 16);
}

// The 6-bit scale and min of group `j` of a Q4_K/Q5_K super-block.
__device__ __forceinline__ void scale_min_k4(const u8* s, int j, int* sc, int* m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

// Group `g` (32 values) of a row of format FMT, dequantized into v. Every
// format is read as groups of 32, so one kernel body serves them all; the
// arithmetic is the CPU reference's (`quant::unpack`): scale·q + min with
// the scale formed first.
template <int FMT>
__device__ __forceinline__ void load_group(const u8* row, int g, float* v) {
    if (FMT == FMT_F32) {
        const float4* p = (const float4*)(row + (size_t)g * 128);
#pragma unroll
        for (int i = 0; i < 8; i++) {
            float4 f = p[i];
            v[4 * i] = f.x; v[4 * i + 1] = f.y; v[4 * i + 2] = f.z; v[4 * i + 3] = f.w;
        }
    } else if (FMT == FMT_F16 || FMT == FMT_BF16) {
        const uint4* p = (const uint4*)(row + (size_t)g * 64);
#pragma unroll
        for (int i = 0; i < 4; i++) {
            uint4 w = p[i];
            u32 words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
            for (int k = 0; k < 4; k++) {
                u16 lo = (u16)(words[k] & 0xffff), hi = (u16)(words[k] >> 16);
                v[8 * i + 2 * k] = FMT == FMT_F16 ? f16_to_f32(lo) : bf16_to_f32(lo);
                v[8 * i + 2 * k + 1] = FMT == FMT_F16 ? f16_to_f32(hi) : bf16_to_f32(hi);
            }
        }
    } else if (FMT == FMT_Q8_0) {
        const u8* b = row + (size_t)g * 34;
        float d = half_at(b);
        const u16* q = (const u16*)(b + 2);
#pragma unroll
        for (int i = 0; i < 16; i++) {
            u16 two = q[i];
            v[2 * i] = (float)(i8)(two & 0xff) * d;
            v[2 * i + 1] = (float)(i8)(two >> 8) * d;
        }
    } else if (FMT == FMT_Q4_0 || FMT == FMT_Q4_1) {
        const int size = FMT == FMT_Q4_0 ? 18 : 20;
        const u8* b = row + (size_t)g * size;
        float d = half_at(b);
        float m = FMT == FMT_Q4_1 ? half_at(b + 2) : 0.0f;
        const u16* q = (const u16*)(b + (FMT == FMT_Q4_0 ? 2 : 4));
#pragma unroll
        for (int i = 0; i < 8; i++) {
            u16 two = q[i];
#pragma unroll
            for (int k = 0; k < 2; k++) {
                int byte = (two >> (8 * k)) & 0xff;
                int j = 2 * i + k;
                if (FMT == FMT_Q4_0) {
                    v[j] = (float)((byte & 0x0F) - 8) * d;
                    v[j + 16] = (float)((byte >> 4) - 8) * d;
                } else {
                    v[j] = (float)(byte & 0x0F) * d + m;
                    v[j + 16] = (float)(byte >> 4) * d + m;
                }
            }
        }
    } else if (FMT == FMT_Q5_0 || FMT == FMT_Q5_1) {
        const bool with_min = FMT == FMT_Q5_1;
        const u8* b = row + (size_t)g * (with_min ? 24 : 22);
        float d = half_at(b);
        float m = with_min ? half_at(b + 2) : 0.0f;
        const u8* at = b + (with_min ? 4 : 2);
        u32 high = u32_at(at);
        const u8* qs = at + 4;
#pragma unroll
        for (int j = 0; j < 32; j++) {
            int nib = (qs[j % 16] >> (4 * (j / 16))) & 0x0F;
            int q = nib | (((high >> j) & 1) << 4);
            v[j] = with_min ? (float)q * d + m : (float)(q - 16) * d;
        }
    } else if (FMT == FMT_Q4_K || FMT == FMT_Q5_K) {
        const bool five = FMT == FMT_Q5_K;
        const u8* b = row + (size_t)(g / 8) * (five ? 176 : 144);
        int gi = g % 8;
        float d = half_at(b), dmin = half_at(b + 2);
        int sc, mn;
        scale_min_k4(b + 4, gi, &sc, &mn);
        float scale = d * (float)sc;
        float min = -(dmin * (float)mn);
        const u8* qh = b + 16;
        const u8* qs = b + (five ? 48 : 16) + 32 * (gi / 2);
        int shift = 4 * (gi % 2);
#pragma unroll
        for (int l = 0; l < 32; l++) {
            int q = (qs[l] >> shift) & 0x0F;
            if (five) q |= ((qh[l] >> gi) & 1) << 4;
            v[l] = scale * (float)q + min;
        }
    } else if (FMT == FMT_Q6_K) {
        const u8* b = row + (size_t)(g / 8) * 210;
        int gi = g % 8;
        int half = gi / 4, part = gi % 4;
        const u8* low = b + 64 * half + 32 * (part % 2);
        const u8* high = b + 128 + 32 * half;
        const u8* sc = b + 192;
        float d = half_at(b + 208);
        float s0 = d * (float)(i8)sc[2 * gi], s1 = d * (float)(i8)sc[2 * gi + 1];
        int lshift = 4 * (part / 2), hshift = 2 * part;
#pragma unroll
        for (int l = 0; l < 32; l++) {
            int q = (((low[l] >> lshift) & 0x0F) | (((high[l] >> hshift) & 3) << 4)) - 32;
            v[l] = (l < 16 ? s0 : s1) * (float)q;
        }
    }
}

// load_group for a format known only at run time (embedding rows, whole
// matrices dequantized for cuBLAS): not on the hot path of decode.
__device__ void load_group_any(int fmt, const u8* row, int g, float* v) {
    switch (fmt) {
        case FMT_F32: load_group<FMT_F32>(row, g, v); break;
        case FMT_F16: load_group<FMT_F16>(row, g, v); break;
        case FMT_BF16: load_group<FMT_BF16>(row, g, v); break;
        case FMT_Q8_0: load_group<FMT_Q8_0>(row, g, v); break;
        case FMT_Q4_0: load_group<FMT_Q4_0>(row, g, v); break;
        case FMT_Q4_1: load_group<FMT_Q4_1>(row, g, v); break;
        case FMT_Q5_0: load_group<FMT_Q5_0>(row, g, v); break;
        case FMT_Q5_1: load_group<FMT_Q5_1>(row, g, v); break;
        case FMT_Q4_K: load_group<FMT_Q4_K>(row, g, v); break;
        case FMT_Q5_K: load_group<FMT_Q5_K>(row, g, v); break;
        case FMT_Q6_K: load_group<FMT_Q6_K>(row, g, v); break;
        default:
            for (int i = 0; i < 32; i++) v[i] = 0.0f;
    }
}

__device__ __forceinline__ float kv_load(int dtype, const void* base, size_t i) {
    if (dtype == KV_F32) return ((const float*)base)[i];
    u16 h = ((const u16*)base)[i];
    return dtype == KV_F16 ? f16_to_f32(h) : bf16_to_f32(h);
}

__device__ __forceinline__ void kv_store_one(int dtype, void* base, size_t i, float v) {
    if (dtype == KV_F32) {
        ((float*)base)[i] = v;
    } else {
        ((u16*)base)[i] = dtype == KV_F16 ? f32_to_f16(v) : f32_to_bf16(v);
    }
}
