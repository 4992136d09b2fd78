// out = x · wᵀ for a few activation rows (T ≤ MAX_T): the decode step's
// matmul, where reading the weights is the whole cost. One warp per output
// row. Quantized rows: each lane walks the row's groups of 32 values,
// dequantizing in registers, and dots them with every activation row.
// Dense rows (f32, f16, bf16): each lane takes 8 consecutive values per
// pass, so a warp reads 256 consecutive values at once (coalesced), with
// several passes in flight. A row's sum is formed in the same order
// whatever T is, so a sequence's logits do not depend on how many share
// its step.

#define MAX_T 8
#define GEMV_WARPS 4

// Each activation row's sum over the warp, written by lane 0.
__device__ __forceinline__ void write_sums(float* acc, int t_rows, int lane, float* out, int rows,
                                           int row) {
#pragma unroll
    for (int t = 0; t < MAX_T; t++) {
        if (t < t_rows) {
            float s = warp_sum(acc[t]);
            if (lane == 0) out[(size_t)t * rows + row] = s;
        }
    }
}

// UNIT values of a row at unit index u: a quantized group of 32, or 8
// dense values (16 bytes of f16/bf16, 32 of f32).
template <int FMT, int UNIT>
__device__ __forceinline__ void load_unit(const u8* row, int u, float* v) {
    if constexpr (UNIT == 32) {
        load_group<FMT>(row, u, v);
    } else if constexpr (FMT == FMT_F32) {
        const float4* p = (const float4*)(row + (size_t)u * 32);
        float4 a = p[0], b = p[1];
        v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w;
        v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
    } else {
        uint4 q = *(const uint4*)(row + (size_t)u * 16);
        u32 words[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
        for (int k = 0; k < 4; k++) {
            u16 lo = (u16)(words[k] & 0xffff), hi = (u16)(words[k] >> 16);
            v[2 * k] = FMT == FMT_F16 ? f16_to_f32(lo) : bf16_to_f32(lo);
            v[2 * k + 1] = FMT == FMT_F16 ? f16_to_f32(hi) : bf16_to_f32(hi);
        }
    }
}

// Lane l takes units l, l + 32, …; with 8-value dense units a warp pass
// reads 256 consecutive values, and several passes are kept in flight.
template <int FMT, int UNIT>
__device__ __forceinline__ void gemv_body(const u8* w, u64 row_bytes, int rows, int cols,
                                          const float* x, int t_rows, float* out) {
    int row = blockIdx.x * GEMV_WARPS + threadIdx.x / WARP;
    if (row >= rows) return;
    int lane = threadIdx.x % WARP;
    const u8* wr = w + (size_t)row * row_bytes;
    float acc[MAX_T];
#pragma unroll
    for (int t = 0; t < MAX_T; t++) acc[t] = 0.0f;
    float v[UNIT];
#pragma unroll(UNIT == 8 ? 4 : 1)
    for (int u = lane; u < cols / UNIT; u += WARP) {
        load_unit<FMT, UNIT>(wr, u, v);
#pragma unroll
        for (int t = 0; t < MAX_T; t++) {
            if (t < t_rows) {
                const float4* xp = (const float4*)(x + (size_t)t * cols + UNIT * u);
                float s = 0.0f;
#pragma unroll
                for (int i = 0; i < UNIT / 4; i++) {
                    float4 xv = xp[i];
                    s += v[4 * i] * xv.x + v[4 * i + 1] * xv.y + v[4 * i + 2] * xv.z +
                         v[4 * i + 3] * xv.w;
                }
                acc[t] += s;
            }
        }
    }
    write_sums(acc, t_rows, lane, out, rows, row);
}

#define GEMV(name, FMT, UNIT)                                                               \
    extern "C" __global__ void name(const u8* w, u64 row_bytes, int rows, int cols,         \
                                    const float* x, int t_rows, float* out) {               \
        gemv_body<FMT, UNIT>(w, row_bytes, rows, cols, x, t_rows, out);                     \
    }

// One GEMV(gemv_<format>, FMT_<FORMAT>, unit) per weight format follows
// this file, emitted from the formats' descriptor table.
