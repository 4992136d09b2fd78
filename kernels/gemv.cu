// out = x · wᵀ for a few activation rows (T ≤ MAX_T): the decode step's
// matmul, where reading the weights is the whole cost. One warp per output
// row; each lane walks the row's groups of 32 values, dequantizing in
// registers, and dots them with every activation row. A row's sum is
// formed in the same order whatever T is, so a sequence's logits do not
// depend on how many share its step.

#define MAX_T 8
#define GEMV_WARPS 4

template <int FMT>
__device__ __forceinline__ void gemv_body(const u8* w, u64 row_bytes, int rows, int cols,
                                          const float* x, int t_rows, float* out) {
    int row = blockIdx.x * GEMV_WARPS + threadIdx.x / WARP;
    if (row >= rows) return;
    int lane = threadIdx.x % WARP;
    const u8* wr = w + (size_t)row * row_bytes;
    float acc[MAX_T];
#pragma unroll
    for (int t = 0; t < MAX_T; t++) acc[t] = 0.0f;
    float v[32];
    for (int g = lane; g < cols / 32; g += WARP) {
        load_group<FMT>(wr, g, v);
#pragma unroll
        for (int t = 0; t < MAX_T; t++) {
            if (t < t_rows) {
                const float4* xp = (const float4*)(x + (size_t)t * cols + 32 * g);
                float s = 0.0f;
#pragma unroll
                for (int i = 0; i < 8; i++) {
                    float4 xv = xp[i];
                    s += v[4 * i] * xv.x + v[4 * i + 1] * xv.y + v[4 * i + 2] * xv.z +
                         v[4 * i + 3] * xv.w;
                }
                acc[t] += s;
            }
        }
    }
#pragma unroll
    for (int t = 0; t < MAX_T; t++) {
        if (t < t_rows) {
            float s = warp_sum(acc[t]);
            if (lane == 0) out[(size_t)t * rows + row] = s;
        }
    }
}

#define GEMV(name, FMT)                                                                     \
    extern "C" __global__ void name(const u8* w, u64 row_bytes, int rows, int cols,         \
                                    const float* x, int t_rows, float* out) {               \
        gemv_body<FMT>(w, row_bytes, rows, cols, x, t_rows, out);                           \
    }

GEMV(gemv_f32, FMT_F32)
GEMV(gemv_f16, FMT_F16)
GEMV(gemv_bf16, FMT_BF16)
GEMV(gemv_q8_0, FMT_Q8_0)
GEMV(gemv_q4_0, FMT_Q4_0)
GEMV(gemv_q4_1, FMT_Q4_1)
GEMV(gemv_q5_0, FMT_Q5_0)
GEMV(gemv_q5_1, FMT_Q5_1)
GEMV(gemv_q4_k, FMT_Q4_K)
GEMV(gemv_q5_k, FMT_Q5_K)
GEMV(gemv_q6_k, FMT_Q6_K)
