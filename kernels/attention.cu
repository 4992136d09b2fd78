// Paged attention. The cache holds, per layer, a key plane and a value
// plane of `blocks · block_size` slots of `kv_dim` elements; a sequence
// finds its positions through its block table.
//
// One kernel serves decode and prefill: a block takes a tile of a
// sequence's consecutive rows (one row when decoding) and one KV head, and
// streams the sequence's keys and values through shared memory 32
// positions at a time (flash-style, online softmax). Each (row, query
// head) pair is one warp's work; a lane scores one key of the chunk, then
// owns output dimensions lane, lane + 32, … below head_dim. A pair's arithmetic is the same
// whatever its tile, so a row's output does not depend on the rows beside
// it, and decode agrees with prefill.

#define ATT_WARPS 4
#define ATT_CHUNK 32
#define MAX_HD 256
#define MAX_PAIRS_PER_WARP 8

// Writes row r's keys and values to its slot in `layer`'s planes.
extern "C" __global__ void kv_store(const float* k, const float* v, const u32* slots,
                                   int kv_dim, int dtype, void* kplane, void* vplane) {
    int r = blockIdx.x;
    size_t base = (size_t)slots[r] * kv_dim;
    for (int i = threadIdx.x; i < kv_dim; i += blockDim.x) {
        kv_store_one(dtype, kplane, base + i, k[(size_t)r * kv_dim + i]);
        kv_store_one(dtype, vplane, base + i, v[(size_t)r * kv_dim + i]);
    }
}

// grid: (n_kv_heads, tiles). Dynamic shared memory:
// (32 · head_dim + 2 · 32 · (head_dim + 1)) floats.
extern "C" __global__ void attention(const float* q, const void* kplane, const void* vplane,
                                     int dtype, const u32* positions, const u32* row_seq,
                                     const u32* tables, const u32* table_starts,
                                     const u32* tile_first, const u32* tile_rows,
                                     int block_size, int n_heads, int n_kv_heads, int head_dim,
                                     float scale, float* out) {
    DYNAMIC_SHARED(float, smem);
    int kvh = blockIdx.x;
    int first = tile_first[blockIdx.y], n_rows = tile_rows[blockIdx.y];
    int group = n_heads / n_kv_heads;
    int pairs = n_rows * group;
    int q_dim = n_heads * head_dim, kv_dim = n_kv_heads * head_dim;
    int stride = head_dim + 1;
    float* qs = smem;
    float* ks = qs + ATT_CHUNK * head_dim;
    float* vs = ks + ATT_CHUNK * stride;
    int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;

    // The tile's queries: pair p is row first + p / group, head
    // kvh · group + p % group.
    for (int i = threadIdx.x; i < pairs * head_dim; i += blockDim.x) {
        int p = i / head_dim, d = i % head_dim;
        int r = first + p / group, h = kvh * group + p % group;
        qs[i] = q[(size_t)r * q_dim + h * head_dim + d];
    }
    const u32* table = tables + table_starts[row_seq[first]];
    int last = (int)positions[first + n_rows - 1];

    float m[MAX_PAIRS_PER_WARP], l[MAX_PAIRS_PER_WARP];
    float acc[MAX_PAIRS_PER_WARP][MAX_HD / WARP];
#pragma unroll
    for (int s = 0; s < MAX_PAIRS_PER_WARP; s++) {
        m[s] = -INFINITY;
        l[s] = 0.0f;
#pragma unroll
        for (int i = 0; i < MAX_HD / WARP; i++) acc[s][i] = 0.0f;
    }

    for (int c0 = 0; c0 <= last; c0 += ATT_CHUNK) {
        __syncthreads();
        for (int i = threadIdx.x; i < ATT_CHUNK * head_dim; i += blockDim.x) {
            int j = i / head_dim, d = i % head_dim;
            int pos = c0 + j;
            float kv = 0.0f, vv = 0.0f;
            if (pos <= last) {
                size_t slot = (size_t)table[pos / block_size] * block_size + pos % block_size;
                size_t at = slot * kv_dim + (size_t)kvh * head_dim + d;
                kv = kv_load(dtype, kplane, at);
                vv = kv_load(dtype, vplane, at);
            }
            ks[j * stride + d] = kv;
            vs[j * stride + d] = vv;
        }
        __syncthreads();
#pragma unroll
        for (int s = 0; s < MAX_PAIRS_PER_WARP; s++) {
            int p = warp + s * ATT_WARPS;
            if (p >= pairs) break;
            int qpos = (int)positions[first + p / group];
            int kpos = c0 + lane;
            float score = -INFINITY;
            if (kpos <= qpos) {
                const float* qp = qs + p * head_dim;
                const float* kp = ks + lane * stride;
                float dot = 0.0f;
                for (int d = 0; d < head_dim; d++) dot += qp[d] * kp[d];
                score = dot * scale;
            }
            float cmax = warp_max(score);
            if (cmax == -INFINITY) continue;
            float m_new = fmaxf(m[s], cmax);
            float corr = expf(m[s] - m_new);
            float pj = expf(score - m_new);
            l[s] = l[s] * corr + warp_sum(pj);
#pragma unroll
            for (int i = 0; i < MAX_HD / WARP; i++) {
                if (lane + WARP * i < head_dim) acc[s][i] *= corr;
            }
            for (int j = 0; j < ATT_CHUNK; j++) {
                float w = __shfl_sync(FULL_MASK, pj, j);
                const float* vp = vs + j * stride;
#pragma unroll
                for (int i = 0; i < MAX_HD / WARP; i++) {
                    if (lane + WARP * i < head_dim) acc[s][i] += w * vp[lane + WARP * i];
                }
            }
            m[s] = m_new;
        }
    }
#pragma unroll
    for (int s = 0; s < MAX_PAIRS_PER_WARP; s++) {
        int p = warp + s * ATT_WARPS;
        if (p >= pairs) break;
        int r = first + p / group, h = kvh * group + p % group;
        float inv = 1.0f / l[s];
        float* o = out + (size_t)r * q_dim + h * head_dim;
#pragma unroll
        for (int i = 0; i < MAX_HD / WARP; i++) {
            if (lane + WARP * i < head_dim) o[lane + WARP * i] = acc[s][i] * inv;
        }
    }
}

// Copies whole blocks (every layer, keys and values): copy-on-write of a
// shared prefix block. grid: (pairs, 2 · layers); planes are
// `plane_elems` elements of `elem_bytes` apart.
extern "C" __global__ void kv_copy_blocks(u8* cache, const u32* src, const u32* dst,
                                         u64 plane_bytes, u64 block_bytes) {
    u8* plane = cache + blockIdx.y * plane_bytes;
    const u16* from = (const u16*)(plane + (u64)src[blockIdx.x] * block_bytes);
    u16* to = (u16*)(plane + (u64)dst[blockIdx.x] * block_bytes);
    for (u64 i = threadIdx.x; i < block_bytes / 2; i += blockDim.x) to[i] = from[i];
}
