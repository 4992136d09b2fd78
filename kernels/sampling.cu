// Token choice on the device, one block per row of logits (at most
// SAMPLE_THREADS threads), so that a step returns token ids instead of
// whole rows.

#define SAMPLE_THREADS 1024

// (value, index) maximum over the block; ties go to the lowest index, as
// the CPU sampler's greedy choice does.
__device__ void block_argmax(float v, u32 i, float* sv, u32* si, float* out_v, u32* out_i) {
    for (int o = WARP / 2; o > 0; o >>= 1) {
        float ov = __shfl_xor_sync(FULL_MASK, v, o);
        u32 oi = __shfl_xor_sync(FULL_MASK, i, o);
        if (ov > v || (ov == v && oi < i)) { v = ov; i = oi; }
    }
    int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;
    __syncthreads();
    if (lane == 0) { sv[warp] = v; si[warp] = i; }
    __syncthreads();
    if (warp == 0) {
        v = lane < (int)(blockDim.x / WARP) ? sv[lane] : -INFINITY;
        i = lane < (int)(blockDim.x / WARP) ? si[lane] : 0xffffffffu;
        for (int o = WARP / 2; o > 0; o >>= 1) {
            float ov = __shfl_xor_sync(FULL_MASK, v, o);
            u32 oi = __shfl_xor_sync(FULL_MASK, i, o);
            if (ov > v || (ov == v && oi < i)) { v = ov; i = oi; }
        }
        if (lane == 0) { sv[0] = v; si[0] = i; }
    }
    __syncthreads();
    *out_v = sv[0];
    *out_i = si[0];
}

__device__ u32 row_argmax(const float* l, int vocab, float* sv, u32* si, float* max_out) {
    float best = -INFINITY;
    u32 bi = 0xffffffffu;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
        if (l[i] > best) { best = l[i]; bi = (u32)i; }
    }
    float v;
    u32 idx;
    block_argmax(best, bi, sv, si, &v, &idx);
    *max_out = v;
    return idx;
}

extern "C" __global__ void argmax_rows(const float* logits, int vocab, u32* out) {
    __shared__ float sv[32];
    __shared__ u32 si[32];
    float m;
    u32 i = row_argmax(logits + (size_t)blockIdx.x * vocab, vocab, sv, si, &m);
    if (threadIdx.x == 0) out[blockIdx.x] = i;
}

// Count and probability mass (unnormalised, exp(l/T − max)) of the
// logits at or above t.
__device__ void above(const float* l, int vocab, float inv_t, float mx, float t, float* scratch,
                      float* count, float* mass) {
    float c = 0.0f, s = 0.0f;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
        float x = l[i] * inv_t;
        if (x >= t) { c += 1.0f; s += expf(x - mx); }
    }
    *count = block_sum(c, scratch);
    *mass = block_sum(s, scratch);
}

// Samples each row with temperature, top-k (0: off) and top-p (1: off)
// from the uniform draw `u` the host gives it: top-k first, then the
// smallest set of highest-probability tokens holding top-p of what is
// left, then the token where u · mass falls in index order. The
// thresholds are found by bisection on the scaled logit value, so no sort
// is needed.
extern "C" __global__ void sample_rows(const float* logits, int vocab, const float* temperature,
                                       const u32* top_k, const float* top_p, const float* u,
                                       u32* out) {
    __shared__ float sv[32];
    __shared__ u32 si[32];
    __shared__ float scratch[32];
    __shared__ float chunk_mass[SAMPLE_THREADS];
    int r = blockIdx.x;
    const float* l = logits + (size_t)r * vocab;
    float mx;
    u32 best = row_argmax(l, vocab, sv, si, &mx);
    float temp = temperature[r];
    if (temp <= 0.0f) {
        if (threadIdx.x == 0) out[r] = best;
        return;
    }
    float inv_t = 1.0f / temp;
    mx *= inv_t;
    // Lower bound of the scaled logits.
    float lo_local = INFINITY;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) lo_local = fminf(lo_local, l[i] * inv_t);
    float lo = -block_max(-lo_local, scratch);
    float count, mass;
    // Top-k: the highest threshold keeping at least k tokens.
    float t_k = lo;
    u32 k = top_k[r];
    if (k > 0 && k < (u32)vocab) {
        float a = lo, b = mx;
        for (int it = 0; it < 40; it++) {
            float mid = 0.5f * (a + b);
            above(l, vocab, inv_t, mx, mid, scratch, &count, &mass);
            if (count >= (float)k) a = mid; else b = mid;
        }
        t_k = a;
    }
    float total;
    above(l, vocab, inv_t, mx, t_k, scratch, &count, &total);
    // Top-p within the top-k: the highest threshold keeping p of its mass.
    float t_p = t_k;
    float p = top_p[r];
    if (p < 1.0f) {
        float a = t_k, b = mx;
        for (int it = 0; it < 40; it++) {
            float mid = 0.5f * (a + b);
            above(l, vocab, inv_t, mx, mid, scratch, &count, &mass);
            if (mass >= p * total) a = mid; else b = mid;
        }
        t_p = a;
    }
    // Each thread sums a contiguous chunk; the chunk holding u · mass is
    // walked in index order.
    int per = (vocab + blockDim.x - 1) / blockDim.x;
    int begin = threadIdx.x * per, end = min(vocab, begin + per);
    float s = 0.0f;
    for (int i = begin; i < end; i++) {
        float x = l[i] * inv_t;
        if (x >= t_p) s += expf(x - mx);
    }
    chunk_mass[threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.x == 0) {
        float all = 0.0f;
        for (int c = 0; c < (int)blockDim.x; c++) all += chunk_mass[c];
        float target = u[r] * all, cum = 0.0f;
        u32 chosen = best;
        for (int c = 0; c < (int)blockDim.x; c++) {
            if (cum + chunk_mass[c] > target && chunk_mass[c] > 0.0f) {
                int cb = c * per, ce = min(vocab, cb + per);
                for (int i = cb; i < ce; i++) {
                    float x = l[i] * inv_t;
                    if (x >= t_p) {
                        cum += expf(x - mx);
                        chosen = (u32)i;
                        if (cum > target) break;
                    }
                }
                break;
            }
            cum += chunk_mass[c];
        }
        out[r] = chosen;
    }
}
