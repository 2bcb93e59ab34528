// Kernels of the GPU path (package cuda). NVRTC compiles this file at run
// time; the tests also compile it as C++ for the CPU (emu.h) and
// check every kernel there against a float64 reference.
//
// Rules that keep the CPU emulation faithful: block-level cooperation uses
// __shared__ arrays and __syncthreads() only (no warp shuffles, no atomics
// on shared memory, no dynamic shared memory), and a kernel that
// cooperates declares a __shared__ array in its own body (the emulation
// runs the threads of such kernels as fibers that meet at barriers, of
// others one by one), one one-dimensional array per line; every kernel is extern "C"
// with parameters of the types float*, const float*, int, unsigned long
// long, float and double; one element per thread unless said.

typedef unsigned int u32;
typedef unsigned long long u64;

// philox is Philox4x32-10 on ctr under key (philox.go has the Go reference).
__device__ inline void philox(u32 ctr[4], u32 k0, u32 k1) {
	for (int r = 0; r < 10; r++) {
		u64 p0 = (u64)0xD2511F53u * ctr[0];
		u64 p1 = (u64)0xCD9E8D57u * ctr[2];
		u32 n0 = (u32)(p1 >> 32) ^ ctr[1] ^ k0;
		u32 n2 = (u32)(p0 >> 32) ^ ctr[3] ^ k1;
		ctr[0] = n0;
		ctr[1] = (u32)p1;
		ctr[2] = n2;
		ctr[3] = (u32)p0;
		k0 += 0x9E3779B9u;
		k1 += 0xBB67AE85u;
	}
}

// normal is standard normal number i of the seed's stream (Normal in
// philox.go): Box–Muller on two 24-bit uniforms of Philox block i/4.
__device__ inline float normal(u64 seed, u64 i) {
	u64 q = i / 4;
	u32 c[4] = {(u32)q, (u32)(q >> 32), 0u, 0u};
	philox(c, (u32)seed, (u32)(seed >> 32));
	int lane = (int)(i % 4);
	u32 a = c[lane & 2], b = c[(lane & 2) + 1];
	float u1 = ((float)(a >> 8) + 0.5f) * (1.0f / 16777216.0f);
	float u2 = ((float)(b >> 8) + 0.5f) * (1.0f / 16777216.0f);
	float r = sqrtf(-2.0f * logf(u1));
	float th = 6.283185307179586f * u2;
	return (lane & 1) == 0 ? r * cosf(th) : r * sinf(th);
}

__device__ inline int gid() { return blockIdx.x * blockDim.x + threadIdx.x; }

// GN_THREADS is the block size of the kernels that reduce within a block
// (the size of their shared arrays).
#define GN_THREADS 256

// GN_SLOTS is how many channels the GroupNorm kernels' blocks work on at
// once (a power of two dividing their block size).
#define GN_SLOTS 8

// block_sum adds s[0 … blockDim.x) into s[0], blockDim.x a power of two at
// most GN_THREADS; every thread of the block calls it (it has barriers).
__device__ inline void block_sum(double* s) {
	__syncthreads();
	for (int h = blockDim.x / 2; h > 0; h /= 2) {
		if ((int)threadIdx.x < h) s[threadIdx.x] += s[threadIdx.x + h];
		__syncthreads();
	}
}

// ncsn_fill_normal writes normal numbers offset … offset+n−1 of the seed's
// stream.
extern "C" __global__ void ncsn_fill_normal(float* out, int n, u64 seed, u64 offset) {
	int i = gid();
	if (i < n) out[i] = normal(seed, offset + (u64)i);
}

// ncsn_silu: y = x·sigmoid(x).
extern "C" __global__ void ncsn_silu(float* y, const float* x, int n) {
	int i = gid();
	if (i < n) {
		float v = x[i];
		y[i] = v / (1.0f + expf(-v));
	}
}

// ncsn_silu_grad: dx = dy·s·(1 + x(1 − s)), s = sigmoid(x).
extern "C" __global__ void ncsn_silu_grad(float* dx, const float* x, const float* dy, int n) {
	int i = gid();
	if (i < n) {
		float v = x[i];
		float s = 1.0f / (1.0f + expf(-v));
		dx[i] = dy[i] * s * (1.0f + v * (1.0f - s));
	}
}

// A parameter set (ParamSet in params.go) is a table of chunks, CHUNK_WORDS
// 64-bit words each: the device addresses of a tensor's weights, gradient,
// Adam moments m and v and EMA, then the chunk's first index in the tensor
// and its length.
#define CHUNK_WORDS 8

// ncsn_adam_ema_chunks is one Adam step of optim.Adam.UpdateScaled, in
// double as there (step = lr/(1−β₁ᵗ), c2 = 1−β₂ᵗ computed on the host,
// gradients times scale), then the EMA ema ← d·ema + (1−d)·w in float as
// optim.UpdateEMA, on every tensor of a parameter set: one block per chunk.
extern "C" __global__ void ncsn_adam_ema_chunks(const float* tab, double scale, double b1, double b2, double step, double c2,
                                                double eps, float d) {
	const u64* c = (const u64*)tab + (u64)blockIdx.x * CHUNK_WORDS;
	float* w = (float*)c[0];
	const float* g = (const float*)c[1];
	float* m = (float*)c[2];
	float* v = (float*)c[3];
	float* ema = (float*)c[4];
	u64 lo = c[5], n = c[6];
	for (u64 k = threadIdx.x; k < n; k += blockDim.x) {
		u64 i = lo + k;
		double gd = (double)g[i] * scale;
		double mj = b1 * (double)m[i] + (1.0 - b1) * gd;
		double vj = b2 * (double)v[i] + (1.0 - b2) * gd * gd;
		m[i] = (float)mj;
		v[i] = (float)vj;
		float wi = w[i] - (float)(step * mj / (sqrt(vj / c2) + eps));
		w[i] = wi;
		ema[i] = d * ema[i] + (1.0f - d) * wi;
	}
}

// ncsn_sumsq_chunks writes each chunk's Σ g² of the gradients of a
// parameter set (in double: a float overflows beyond 3.4e38, a norm of
// 1.8e19) to part[chunk]: one block of GN_THREADS per chunk.
extern "C" __global__ void ncsn_sumsq_chunks(double* part, const float* tab) {
	__shared__ double acc[GN_THREADS];
	const u64* c = (const u64*)tab + (u64)blockIdx.x * CHUNK_WORDS;
	const float* g = (const float*)c[1];
	u64 lo = c[5], n = c[6];
	double a = 0;
	for (u64 k = threadIdx.x; k < n; k += blockDim.x) a += (double)g[lo + k] * g[lo + k];
	acc[threadIdx.x] = a;
	block_sum(acc);
	if (threadIdx.x == 0) part[blockIdx.x] = acc[0];
}

// ncsn_langevin is one step of annealed Langevin dynamics on x in place:
// x ← x + (α/2)·s + √α·z, z number offset+i of the seed's stream.
extern "C" __global__ void ncsn_langevin(float* x, const float* s, int n, float halfAlpha, float sd, u64 seed, u64 offset) {
	int i = gid();
	if (i < n) x[i] += halfAlpha * s[i] + sd * normal(seed, offset + (u64)i);
}

// ncsn_gn_silu is GroupNorm followed by SiLU over x (C,B,HW), channel-major
// as package nn lays it out: one block of GN_THREADS threads per (group,
// image), blockIdx.x = g·B + b. It writes y = silu((x − μ)·r·γ + β) and the
// group's μ and r = 1/√(var + eps) to stats[2(g·B+b)], [2(g·B+b)+1]. The
// sums are accumulated in double, as the CPU operator does.
extern "C" __global__ void ncsn_gn_silu(float* y, float* stats, const float* x, const float* gamma, const float* beta,
                                        int C, int B, int HW, int groups, float eps) {
	__shared__ double s1[GN_THREADS];
	__shared__ double s2[GN_THREADS];
	int g = blockIdx.x / B, b = blockIdx.x % B;
	int cpg = C / groups;
	int n = cpg * HW;
	// The block as GN_SLOTS slots of `per` threads: slot k takes the
	// group's channels k, k + slots, …, its threads stride over the image
	// (all threads busy on small images, no division per value).
	int slots = blockDim.x < GN_SLOTS ? blockDim.x : GN_SLOTS;
	int per = blockDim.x / slots, slot = threadIdx.x / per, lane = threadIdx.x % per;
	double a1 = 0, a2 = 0;
	for (int c = g * cpg + slot; c < (g + 1) * cpg; c += slots) {
		const float* xc = x + ((u64)c * B + b) * HW;
		for (int p = lane; p < HW; p += per) {
			double v = xc[p];
			a1 += v;
			a2 += v * v;
		}
	}
	s1[threadIdx.x] = a1;
	s2[threadIdx.x] = a2;
	block_sum(s1);
	block_sum(s2);
	double mean = s1[0] / n;
	double var = s2[0] / n - mean * mean;
	if (var < 0) var = 0;
	double r = 1.0 / sqrt(var + (double)eps);
	if (threadIdx.x == 0) {
		stats[2 * blockIdx.x] = (float)mean;
		stats[2 * blockIdx.x + 1] = (float)r;
	}
	for (int c = g * cpg + slot; c < (g + 1) * cpg; c += slots) {
		const float* xc = x + ((u64)c * B + b) * HW;
		float* yc = y + ((u64)c * B + b) * HW;
		float sc = (float)(gamma[c] * r);
		float sh = (float)(beta[c] - mean * gamma[c] * r);
		for (int p = lane; p < HW; p += per) {
			float a = xc[p] * sc + sh;
			yc[p] = a / (1.0f + expf(-a));
		}
	}
}

// ncsn_gn_silu_grad_x is ∂x of ncsn_gn_silu, one block of GN_THREADS per
// (group, image) as the forward, from its stats: with a = x̂·γ + β,
// s = sigmoid(a), da = ∂y·s·(1 + a(1 − s)), x̂ = (x − μ)·r and n values in
// the group, ∂x = r·(γ·da − mean(γ·da) − x̂·mean(γ·da·x̂)). The group's
// sums come from each channel's Σda·x̂ and Σda over the image, which it
// also writes to part[2(c·B+b)], [2(c·B+b)+1] for ∂γ and ∂β
// (ncsn_gn_silu_grad_affine): x and ∂y are read twice in all. The block
// works as the forward's slots, so that one reduction (within each slot)
// serves GN_SLOTS channels.
extern "C" __global__ void ncsn_gn_silu_grad_x(float* dx, float* part, const float* x, const float* dy, const float* gamma,
                                               const float* beta, const float* stats, int C, int B, int HW, int groups) {
	__shared__ double s1[GN_THREADS];
	__shared__ double s2[GN_THREADS];
	__shared__ double tot[2];
	int g = blockIdx.x / B, b = blockIdx.x % B;
	int cpg = C / groups, end = (g + 1) * cpg;
	int slots = blockDim.x < GN_SLOTS ? blockDim.x : GN_SLOTS;
	int per = blockDim.x / slots, slot = threadIdx.x / per, lane = threadIdx.x % per;
	float mean = stats[2 * blockIdx.x], r = stats[2 * blockIdx.x + 1];
	if (threadIdx.x == 0) tot[0] = tot[1] = 0;
	for (int c0 = g * cpg; c0 < end; c0 += slots) {
		int c = c0 + slot;
		double a1 = 0, a2 = 0;
		if (c < end) {
			const float* xc = x + ((u64)c * B + b) * HW;
			const float* dyc = dy + ((u64)c * B + b) * HW;
			float gc = gamma[c], bc = beta[c];
			for (int p = lane; p < HW; p += per) {
				float xh = (xc[p] - mean) * r;
				float a = xh * gc + bc;
				float s = 1.0f / (1.0f + expf(-a));
				float da = dyc[p] * s * (1.0f + a * (1.0f - s));
				a1 += (double)da * xh;
				a2 += da;
			}
		}
		s1[threadIdx.x] = a1;
		s2[threadIdx.x] = a2;
		__syncthreads();
		for (int h = per / 2; h > 0; h /= 2) { // within each slot
			if (lane < h) {
				s1[threadIdx.x] += s1[threadIdx.x + h];
				s2[threadIdx.x] += s2[threadIdx.x + h];
			}
			__syncthreads();
		}
		if (lane == 0 && c < end) {
			part[2 * ((u64)c * B + b)] = (float)s1[threadIdx.x];
			part[2 * ((u64)c * B + b) + 1] = (float)s2[threadIdx.x];
		}
		if (threadIdx.x == 0) {
			for (int k = 0; k < slots && c0 + k < end; k++) {
				tot[0] += gamma[c0 + k] * s2[k * per]; // Σγ·da
				tot[1] += gamma[c0 + k] * s1[k * per]; // Σγ·da·x̂
			}
		}
		__syncthreads(); // s1, s2 are written again for the next channels
	}
	double n = (double)cpg * HW;
	float m1 = (float)(tot[0] / n), m2 = (float)(tot[1] / n);
	for (int c = g * cpg + slot; c < end; c += slots) {
		const float* xc = x + ((u64)c * B + b) * HW;
		const float* dyc = dy + ((u64)c * B + b) * HW;
		float* dxc = dx + ((u64)c * B + b) * HW;
		float gc = gamma[c], bc = beta[c];
		for (int p = lane; p < HW; p += per) {
			float xh = (xc[p] - mean) * r;
			float a = xh * gc + bc;
			float s = 1.0f / (1.0f + expf(-a));
			float gda = gc * dyc[p] * s * (1.0f + a * (1.0f - s));
			dxc[p] = r * (gda - m1 - xh * m2);
		}
	}
}

// ncsn_gn_silu_grad_affine is ∂γ and ∂β of ncsn_gn_silu: one thread per
// channel c adds the B images' sums ncsn_gn_silu_grad_x left in part.
extern "C" __global__ void ncsn_gn_silu_grad_affine(float* dgamma, float* dbeta, const float* part, int C, int B) {
	int c = gid();
	if (c >= C) return;
	double a1 = 0, a2 = 0;
	for (int b = 0; b < B; b++) {
		a1 += part[2 * ((u64)c * B + b)];
		a2 += part[2 * ((u64)c * B + b) + 1];
	}
	dgamma[c] = (float)a1;
	dbeta[c] = (float)a2;
}

// ncsn_im2col3 lays out the 3×3, pad 1 patches of x (C,B,H,W) for a matrix
// product: col has C·9 rows (c, ky, kx) of N = B·OH·OW columns (b, oy, ox),
// OH = (H−1)/stride + 1; then y (O, N) = w (O, C·9) · col is the
// convolution in the channel-major layout. One thread per col element.
extern "C" __global__ void ncsn_im2col3(float* col, const float* x, int C, int B, int H, int W, int stride) {
	int OH = (H - 1) / stride + 1, OW = (W - 1) / stride + 1;
	u64 N = (u64)B * OH * OW;
	u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= (u64)C * 9 * N) return;
	u64 row = i / N, q = i % N;
	int c = (int)(row / 9), k = (int)(row % 9);
	int b = (int)(q / ((u64)OH * OW)), o = (int)(q % ((u64)OH * OW));
	int iy = (o / OW) * stride + k / 3 - 1, ix = (o % OW) * stride + k % 3 - 1;
	col[i] = (iy < 0 || iy >= H || ix < 0 || ix >= W) ? 0.0f : x[(((u64)c * B + b) * H + iy) * W + ix];
}

// ncsn_swap01 writes dst (B, A, n) from src (A, B, n), adding bias[r / A]
// to each value of dst's row r where bias is not null: the channel-major
// layout (C, B, H·W) as cuDNN's NCHW (B, C, H·W), and back (A and B
// exchanged) with a convolution's bias. One block row per row of dst
// (blockIdx.x); its n values over blockIdx.y·blockDim.x + threadIdx.x,
// striding by the grid: contiguous reads and writes, no 64-bit division.
extern "C" __global__ void ncsn_swap01(float* dst, const float* src, const float* bias, int A, int B, int n) {
	unsigned r = blockIdx.x, a = r % (unsigned)A, b = r / (unsigned)A;
	const float* s = src + ((u64)a * B + b) * n;
	float* d = dst + (u64)r * n;
	int step = gridDim.y * blockDim.x;
	if (bias) {
		float add = bias[b];
		for (int k = blockIdx.y * blockDim.x + threadIdx.x; k < n; k += step) d[k] = s[k] + add;
	} else {
		for (int k = blockIdx.y * blockDim.x + threadIdx.x; k < n; k += step) d[k] = s[k];
	}
}

// ncsn_col2im3 is the adjoint of ncsn_im2col3: dx[c,b,y,x] is the sum of
// the col entries that read it (a gather: one thread per dx element, no
// atomics).
extern "C" __global__ void ncsn_col2im3(float* dx, const float* col, int C, int B, int H, int W, int stride) {
	int OH = (H - 1) / stride + 1, OW = (W - 1) / stride + 1;
	u64 N = (u64)B * OH * OW;
	u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= (u64)C * B * H * W) return;
	int xx = (int)(i % W), yy = (int)(i / W % H);
	int b = (int)(i / ((u64)W * H) % B), c = (int)(i / ((u64)W * H * B));
	float sum = 0;
	for (int k = 0; k < 9; k++) {
		int ty = yy + 1 - k / 3, tx = xx + 1 - k % 3; // = oy·stride, ox·stride
		if (ty < 0 || tx < 0 || ty % stride != 0 || tx % stride != 0) continue;
		int oy = ty / stride, ox = tx / stride;
		if (oy >= OH || ox >= OW) continue;
		sum += col[((u64)c * 9 + k) * N + ((u64)b * OH + oy) * OW + ox];
	}
	dx[i] = sum;
}

// ncsn_channel_bias adds e (B, C) to h (C, B, HW) in place: h[c,b,·] += e[b,c].
extern "C" __global__ void ncsn_channel_bias(float* h, const float* e, int C, int B, int HW) {
	u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= (u64)C * B * HW) return;
	int b = (int)(i / HW % B), c = (int)(i / ((u64)HW * B));
	h[i] += e[b * C + c];
}

// ncsn_channel_bias_grad sums dh (C, B, HW) over the pixels: de[b,c]. One
// block of GN_THREADS per (c, b) row, blockIdx.x = c·B + b.
extern "C" __global__ void ncsn_channel_bias_grad(float* de, const float* dh, int C, int B, int HW) {
	__shared__ double acc[GN_THREADS];
	int c = blockIdx.x / B, b = blockIdx.x % B;
	const float* row = dh + (u64)blockIdx.x * HW;
	double s = 0;
	for (int p = threadIdx.x; p < HW; p += blockDim.x) s += row[p];
	acc[threadIdx.x] = s;
	block_sum(acc);
	if (threadIdx.x == 0) de[b * C + c] = (float)acc[0];
}

// ncsn_scale_batch writes y = h·v[b] for h (C, B, HW): NCSNv2's division by
// σ (v = 1/σ), and its gradient with respect to h (the same product).
extern "C" __global__ void ncsn_scale_batch(float* y, const float* h, const float* v, int C, int B, int HW) {
	u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= (u64)C * B * HW) return;
	y[i] = h[i] * v[(int)(i / HW % B)];
}

// ncsn_upsample2x is nearest-neighbour doubling of P planes of H×W.
extern "C" __global__ void ncsn_upsample2x(float* y, const float* x, int P, int H, int W) {
	u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= (u64)P * 4 * H * W) return;
	int W2 = 2 * W;
	int xx = (int)(i % W2), yy = (int)(i / W2 % (2 * H));
	u64 p = i / ((u64)W2 * 2 * H);
	y[i] = x[(p * H + yy / 2) * W + xx / 2];
}

// ncsn_upsample2x_grad sums each 2×2 block of dy into dx.
extern "C" __global__ void ncsn_upsample2x_grad(float* dx, const float* dy, int P, int H, int W) {
	u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= (u64)P * H * W) return;
	int xx = (int)(i % W), yy = (int)(i / W % H);
	u64 p = i / ((u64)W * H);
	const float* d = dy + (p * 2 * H + 2 * yy) * 2 * W + 2 * xx;
	dx[i] = (d[0] + d[1]) + (d[2 * W] + d[2 * W + 1]);
}

// ncsn_residual_loss is the DSM loss with λ(σ) = σ² for scores s and noise
// z (C, B, HW): per[b] = ½‖σ_b·s_b + z_b‖² (one block of GN_THREADS per
// image), and its gradient ds = σ_b(σ_b·s + z)/B of the batch mean.
extern "C" __global__ void ncsn_residual_loss(float* per, float* ds, const float* s, const float* sigma, const float* z,
                                              int C, int B, int HW) {
	__shared__ double acc[GN_THREADS];
	int b = blockIdx.x;
	float sg = sigma[b];
	int n = C * HW;
	double a = 0;
	for (int k = threadIdx.x; k < n; k += blockDim.x) {
		u64 at = ((u64)(k / HW) * B + b) * HW + k % HW;
		float r = sg * s[at] + z[at];
		a += (double)r * r;
		ds[at] = sg * r / (float)B;
	}
	acc[threadIdx.x] = a;
	block_sum(acc);
	if (threadIdx.x == 0) per[b] = (float)(acc[0] / 2);
}

// ncsn_bias_rows adds bias[r] to every element of row r of y (R × N):
// a convolution's bias over its (O, B·OH·OW) output.
extern "C" __global__ void ncsn_bias_rows(float* y, const float* bias, int R, int N) {
	u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
	if (i < (u64)R * N) y[i] += bias[(int)(i / N)];
}

// ncsn_bias_cols adds bias[j] to column j of every row of y (R × N): a
// linear layer's bias.
extern "C" __global__ void ncsn_bias_cols(float* y, const float* bias, int R, int N) {
	u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
	if (i < (u64)R * N) y[i] += bias[(int)(i % N)];
}

// ncsn_row_sums writes the sum of each row of x (R × N), in double: the
// bias gradient of a convolution. One block of GN_THREADS per row.
extern "C" __global__ void ncsn_row_sums(float* out, const float* x, int R, int N) {
	__shared__ double acc[GN_THREADS];
	const float* row = x + (u64)blockIdx.x * N;
	double s = 0;
	for (int j = threadIdx.x; j < N; j += blockDim.x) s += row[j];
	acc[threadIdx.x] = s;
	block_sum(acc);
	if (threadIdx.x == 0) out[blockIdx.x] = (float)acc[0];
}

// ncsn_col_sums writes the sum of each column of x (R × N), in double: the
// bias gradient of a linear layer. One thread per column.
extern "C" __global__ void ncsn_col_sums(float* out, const float* x, int R, int N) {
	int j = gid();
	if (j >= N) return;
	double s = 0;
	for (int r = 0; r < R; r++) s += x[(u64)r * N + j];
	out[j] = (float)s;
}

// ncsn_softmax_ce writes, for logits and one-hot labels y (B × K), each
// row's softmax into p and its cross-entropy −Σ_k y_k log p_k into loss[b],
// in double as nn's softmaxCE. One thread per row.
extern "C" __global__ void ncsn_softmax_ce(float* p, float* loss, const float* logits, const float* y, int B, int K) {
	int b = gid();
	if (b >= B) return;
	const float* row = logits + (u64)b * K;
	const float* yr = y + (u64)b * K;
	double mx = row[0];
	for (int k = 1; k < K; k++) mx = fmax(mx, (double)row[k]);
	double z = 0;
	for (int k = 0; k < K; k++) z += exp((double)row[k] - mx);
	double lz = log(z), l = 0;
	for (int k = 0; k < K; k++) {
		double d = (double)row[k] - mx;
		p[(u64)b * K + k] = (float)(exp(d) / z);
		if (yr[k] != 0) l -= (double)yr[k] * (d - lz);
	}
	loss[b] = (float)l;
}

// ncsn_softmax_ce_grad writes dx = scale·(p − y): the gradient of the mean
// cross-entropy of B rows for scale = 1/B.
extern "C" __global__ void ncsn_softmax_ce_grad(float* dx, const float* p, const float* y, int n, float scale) {
	int i = gid();
	if (i < n) dx[i] = scale * (p[i] - y[i]);
}

// ncsn_add: y = a + b.
extern "C" __global__ void ncsn_add(float* y, const float* a, const float* b, int n) {
	int i = gid();
	if (i < n) y[i] = a[i] + b[i];
}

// ncsn_to_graph copies m images (m, C, HW) into the graph's layout
// (C, B, HW), zeroing images m … B−1 (padding of a last chunk).
extern "C" __global__ void ncsn_to_graph(float* dst, const float* src, int C, int B, int HW, int m) {
	u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= (u64)C * B * HW) return;
	int p = (int)(i % HW), b = (int)(i / HW % B), c = (int)(i / ((u64)HW * B));
	dst[i] = b < m ? src[((u64)b * C + c) * HW + p] : 0.0f;
}

// ncsn_from_graph copies the first m images of the graph's layout
// (C, B, HW) into (m, C, HW).
extern "C" __global__ void ncsn_from_graph(float* dst, const float* src, int C, int B, int HW, int m) {
	u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= (u64)m * C * HW) return;
	int p = (int)(i % HW), c = (int)(i / HW % C), b = (int)(i / ((u64)HW * C));
	dst[i] = src[((u64)c * B + b) * HW + p];
}

// ncsn_sum writes the sum (in double) of the m values of part to out[0]:
// one block.
extern "C" __global__ void ncsn_sum(double* out, const double* part, int m) {
	__shared__ double acc[GN_THREADS];
	double a = 0;
	for (int k = threadIdx.x; k < m; k += blockDim.x) a += part[k];
	acc[threadIdx.x] = a;
	block_sum(acc);
	if (threadIdx.x == 0) out[0] = acc[0];
}
