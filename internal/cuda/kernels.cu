// Kernels of the GPU path (package cuda). NVRTC compiles this file at run
// time; the tests also compile it as C++ for the CPU (testdata/emu.h) and
// check every kernel there against a float64 reference.
//
// Rules that keep the CPU emulation faithful: block-level cooperation uses
// __shared__ arrays and __syncthreads() only (no warp shuffles, no atomics
// on shared memory, no dynamic shared memory); every kernel is extern "C"
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

// ncsn_adam is one Adam step of optim.Adam.UpdateScaled, in double as there:
// step = lr/(1−β₁ᵗ), c2 = 1−β₂ᵗ (computed on the host), gradients times scale.
extern "C" __global__ void ncsn_adam(float* w, float* m, float* v, const float* g, int n,
                                     double scale, double b1, double b2, double step, double c2, double eps) {
	int i = gid();
	if (i < n) {
		double gd = (double)g[i] * scale;
		double mj = b1 * (double)m[i] + (1.0 - b1) * gd;
		double vj = b2 * (double)v[i] + (1.0 - b2) * gd * gd;
		m[i] = (float)mj;
		v[i] = (float)vj;
		w[i] -= (float)(step * mj / (sqrt(vj / c2) + eps));
	}
}

// ncsn_ema: ema ← d·ema + (1−d)·w, in float as optim.UpdateEMA.
extern "C" __global__ void ncsn_ema(float* ema, const float* w, int n, float d) {
	int i = gid();
	if (i < n) ema[i] = d * ema[i] + (1.0f - d) * w[i];
}

// ncsn_langevin is one step of annealed Langevin dynamics on x in place:
// x ← x + (α/2)·s + √α·z, z number offset+i of the seed's stream.
extern "C" __global__ void ncsn_langevin(float* x, const float* s, int n, float halfAlpha, float sd, u64 seed, u64 offset) {
	int i = gid();
	if (i < n) x[i] += halfAlpha * s[i] + sd * normal(seed, offset + (u64)i);
}

#define GN_THREADS 256

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
	double a1 = 0, a2 = 0;
	for (int k = threadIdx.x; k < n; k += blockDim.x) {
		int c = g * cpg + k / HW, p = k % HW;
		double v = x[((u64)c * B + b) * HW + p];
		a1 += v;
		a2 += v * v;
	}
	s1[threadIdx.x] = a1;
	s2[threadIdx.x] = a2;
	__syncthreads();
	for (int h = blockDim.x / 2; h > 0; h /= 2) {
		if ((int)threadIdx.x < h) {
			s1[threadIdx.x] += s1[threadIdx.x + h];
			s2[threadIdx.x] += s2[threadIdx.x + h];
		}
		__syncthreads();
	}
	double mean = s1[0] / n;
	double var = s2[0] / n - mean * mean;
	if (var < 0) var = 0;
	double r = 1.0 / sqrt(var + (double)eps);
	if (threadIdx.x == 0) {
		stats[2 * blockIdx.x] = (float)mean;
		stats[2 * blockIdx.x + 1] = (float)r;
	}
	for (int k = threadIdx.x; k < n; k += blockDim.x) {
		int c = g * cpg + k / HW, p = k % HW;
		u64 at = ((u64)c * B + b) * HW + p;
		float sc = (float)(gamma[c] * r);
		float sh = (float)(beta[c] - mean * gamma[c] * r);
		float a = x[at] * sc + sh;
		y[at] = a / (1.0f + expf(-a));
	}
}
