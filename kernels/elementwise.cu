// Row-wise and element-wise kernels of a transformer step. Activations are
// f32, one row per token, as on the CPU backend; sums of squares are kept
// in f32 per thread and reduced in a fixed order.

// out[r] = table[ids[r]], dequantized. One block per row.
extern "C" __global__ void embed(int fmt, const u8* table, u64 row_bytes, const u32* ids,
                                 int cols, float* out) {
    int r = blockIdx.x;
    const u8* src = table + (u64)ids[r] * row_bytes;
    float v[32];
    for (int g = threadIdx.x; g < cols / 32; g += blockDim.x) {
        load_group_any(fmt, src, g, v);
#pragma unroll
        for (int i = 0; i < 32; i++) out[(size_t)r * cols + 32 * g + i] = v[i];
    }
}

// out = x / rms(x) · w per row of `cols`. One block per row. In place when
// out == x.
extern "C" __global__ void rms_norm(const float* x, const float* w, float eps, int cols,
                                    float* out) {
    __shared__ float scratch[32];
    const float* xr = x + (size_t)blockIdx.x * cols;
    float* orow = out + (size_t)blockIdx.x * cols;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) ss += xr[i] * xr[i];
    ss = block_sum(ss, scratch);
    float scale = rsqrtf(ss / (float)cols + eps);
    for (int i = threadIdx.x; i < cols; i += blockDim.x) orow[i] = w[i] * (xr[i] * scale);
}

// rms_norm of every `width`-wide slice (a head) in place. One warp per
// slice.
extern "C" __global__ void head_norm(float* x, const float* w, float eps, int width,
                                     int slices) {
    int slice = blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP;
    if (slice >= slices) return;
    int lane = threadIdx.x % WARP;
    float* s = x + (size_t)slice * width;
    float ss = 0.0f;
    for (int i = lane; i < width; i += WARP) ss += s[i] * s[i];
    ss = warp_sum(ss);
    float scale = rsqrtf(ss / (float)width + eps);
    for (int i = lane; i < width; i += WARP) s[i] = w[i] * (s[i] * scale);
}

// Rotates the first `dims` of every head of every row: one thread per
// (row, head, pair). interleaved: pairs (2i, 2i+1); else (i, i + dims/2).
// The angle is formed in f32 as the reference does; sincos in full
// precision.
extern "C" __global__ void rope(float* x, const u32* positions, const float* inv_freq,
                                int rows, int cols, int head_dim, int dims, int interleaved) {
    int half = dims / 2;
    int heads = cols / head_dim;
    size_t n = (size_t)rows * heads * half;
    for (size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x; t < n;
         t += (size_t)gridDim.x * blockDim.x) {
        int i = (int)(t % half);
        size_t rh = t / half;
        int h = (int)(rh % heads);
        int r = (int)(rh / heads);
        float angle = (float)positions[r] * inv_freq[i];
        double s, c;
        sincos((double)angle, &s, &c);
        float cs = (float)c, sn = (float)s;
        float* head = x + (size_t)r * cols + (size_t)h * head_dim;
        int a = interleaved ? 2 * i : i;
        int b = interleaved ? 2 * i + 1 : i + half;
        float x0 = head[a], x1 = head[b];
        head[a] = x0 * cs - x1 * sn;
        head[b] = x1 * cs + x0 * sn;
    }
}

// gate = silu(gate) · up
extern "C" __global__ void silu_mul(float* gate, const float* up, u64 n) {
    for (u64 i = blockIdx.x * (u64)blockDim.x + threadIdx.x; i < n;
         i += (u64)gridDim.x * blockDim.x) {
        float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

// x += y
extern "C" __global__ void add(float* x, const float* y, u64 n) {
    for (u64 i = blockIdx.x * (u64)blockDim.x + threadIdx.x; i < n;
         i += (u64)gridDim.x * blockDim.x) {
        x[i] += y[i];
    }
}

// x[row] += bias for every row of `cols`.
extern "C" __global__ void add_bias(float* x, const float* bias, int cols, u64 n) {
    for (u64 i = blockIdx.x * (u64)blockDim.x + threadIdx.x; i < n;
         i += (u64)gridDim.x * blockDim.x) {
        x[i] += bias[i % cols];
    }
}

// out[i] = x[rows[i]]. One block per output row.
extern "C" __global__ void gather_rows(const float* x, const u32* rows, int cols, float* out) {
    const float* src = x + (size_t)rows[blockIdx.x] * cols;
    float* dst = out + (size_t)blockIdx.x * cols;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) dst[i] = src[i];
}

// f32 activations to f16 (`bf16` = 0) or bf16 (`bf16` = 1) for cuBLAS.
extern "C" __global__ void to_half(const float* x, u64 n, int bf16, u16* out) {
    for (u64 i = blockIdx.x * (u64)blockDim.x + threadIdx.x; i < n;
         i += (u64)gridDim.x * blockDim.x) {
        out[i] = bf16 ? f32_to_bf16(x[i]) : f32_to_f16(x[i]);
    }
}

// A whole weight matrix dequantized to f16, for batched steps that go
// through cuBLAS. One thread per group of 32 values.
extern "C" __global__ void dequant_f16(int fmt, const u8* w, u64 row_bytes, int rows, int cols,
                                       u16* out) {
    int groups = cols / 32;
    size_t n = (size_t)rows * groups;
    float v[32];
    for (size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x; t < n;
         t += (size_t)gridDim.x * blockDim.x) {
        int r = (int)(t / groups), g = (int)(t % groups);
        load_group_any(fmt, w + (size_t)r * row_bytes, g, v);
        u16* dst = out + (size_t)r * cols + 32 * g;
#pragma unroll
        for (int i = 0; i < 32; i++) dst[i] = f32_to_f16(v[i]);
    }
}

// Deterministic filler for benchmark weights made on the device: valid
// blocks of any format (small scales, random quants), so that a model of
// 8B parameters needs no host generation. `seed` varies per tensor.
extern "C" __global__ void fill_random(u8* dst, u64 bytes, u64 seed) {
    for (u64 i = blockIdx.x * (u64)blockDim.x + threadIdx.x; i < bytes / 2;
         i += (u64)gridDim.x * blockDim.x) {
        u64 z = (i + 1) * 0x9E3779B97F4A7C15ull ^ seed;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        // Halves of exponent ≤ 2^-6 whatever they are read as: f16 scales,
        // bf16 weights or packed quants stay finite and small.
        u16 h = (u16)(z & 0x83ff) | (u16)(0x1000 + ((z >> 16) & 0x0c00));
        ((u16*)dst)[i] = h;
    }
}
