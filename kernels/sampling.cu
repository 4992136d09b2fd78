// The greedy choice on the device, one block per row of logits (at most
// SAMPLE_THREADS threads), so that a step whose sequences are all greedy
// returns one token id per row instead of whole rows. Sampling with a
// temperature runs on the host, where the CPU sampler's seeded draws are.

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

__device__ u32 row_argmax(const float* l, int vocab, float* sv, u32* si) {
    float best = -INFINITY;
    u32 bi = 0xffffffffu;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
        if (l[i] > best) { best = l[i]; bi = (u32)i; }
    }
    float v;
    u32 idx;
    block_argmax(best, bi, sv, si, &v, &idx);
    return idx;
}

extern "C" __global__ void argmax_rows(const float* logits, int vocab, u32* out) {
    __shared__ float sv[32];
    __shared__ u32 si[32];
    u32 i = row_argmax(logits + (size_t)blockIdx.x * vocab, vocab, sv, si);
    if (threadIdx.x == 0) out[blockIdx.x] = i;
}
