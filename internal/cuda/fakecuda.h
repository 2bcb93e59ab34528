// A fake CUDA driver, cuBLAS and cuDNN (its legacy convolutions) — the
// subset of their C APIs that package cuda calls, with the prototypes and
// numbers of cuda.h, cublas_api.h and cudnn_cnn.h (cuDNN 9) — running on
// the CPU emulation of kernels.cu (emu.h; fakedriver.go appends this file
// to it). It is for tests: with it the host code that reaches a GPU
// (driver.go, graph_driver.go, cudnn.go) runs on machines without one,
// and it checks what a real driver would refuse or what would go
// wrong only on a GPU:
//   - calls need the context made current on the calling OS thread
//     (cuCtxSetCurrent is per thread): a call from another thread fails
//     with CUDA_ERROR_INVALID_CONTEXT;
//   - device memory has NaN-filled margins; a launch, product or copy
//     that reaches outside its allocation (or into another device's) is
//     CUDA_ERROR_ILLEGAL_ADDRESS, sticky as on a GPU: every later call of
//     the context fails too;
//   - stream capture in global mode: an allocation, a free, a synchronous
//     copy, a launch on the legacy stream or a synchronisation while a
//     capture runs fails and invalidates the capture; a captured launch
//     keeps its parameters' values as they were when it was recorded;
//   - modules must be CUBIN (ELF for EM_CUDA) or NUL-terminated PTX naming
//     the kernel; block and grid sizes within the hardware's limits;
//   - cuBLAS's leading dimensions and column-major operands (beta = 0
//     never reads C); the handle's stream;
//   - what a context still holds when its last reference goes
//     (fake_report), for the tests of Close.
// NCSN_FAKE_GPUS sets the number of devices (default 1), each its own
// primary context and memory.
#include <algorithm>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>
#include <string>

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
struct fake_ctx;
struct fake_module;
struct fake_function;
struct fake_stream;
struct fake_graph;
struct fake_exec;
typedef fake_ctx* CUcontext;
typedef fake_module* CUmodule;
typedef fake_function* CUfunction;
typedef fake_stream* CUstream;
typedef fake_graph* CUgraph;
typedef fake_exec* CUgraphExec;
typedef int CUdevice_attribute;
typedef int CUstreamCaptureMode;

enum {
	CUDA_SUCCESS = 0,
	CUDA_ERROR_INVALID_VALUE = 1,
	CUDA_ERROR_OUT_OF_MEMORY = 2,
	CUDA_ERROR_NOT_INITIALIZED = 3,
	CUDA_ERROR_INVALID_DEVICE = 101,
	CUDA_ERROR_INVALID_IMAGE = 200,
	CUDA_ERROR_INVALID_CONTEXT = 201,
	CUDA_ERROR_INVALID_HANDLE = 400,
	CUDA_ERROR_ILLEGAL_STATE = 401,
	CUDA_ERROR_NOT_FOUND = 500,
	CUDA_ERROR_ILLEGAL_ADDRESS = 700,
	CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED = 900,
	CUDA_ERROR_STREAM_CAPTURE_INVALIDATED = 901,
	CUDA_ERROR_STREAM_CAPTURE_IMPLICIT = 906,
};

static const uint32_t fake_zone = 0x7fc0bad0, fake_poison = 0x7fc00001;
static const size_t fake_redzone = 1024;

struct fake_alloc {
	fake_ctx* ctx;
	size_t bytes;
	char* raw; // the margins and the allocation
};

struct fake_ctx {
	CUdevice dev;
	int refs = 0;
	bool broken = false; // a sticky error (an illegal address)
	std::string why;     // what broke it
	uint64_t launches = 0;
	std::map<CUdeviceptr, fake_alloc> mem; // by address
	std::set<void*> host;
	std::set<fake_module*> modules;
	std::set<fake_stream*> streams;
	std::set<fake_graph*> graphs;
	std::set<fake_exec*> execs;
	std::set<void*> handles; // cuBLAS (and cuDNN) handles made in it
};

struct fake_module {
	fake_ctx* ctx;
	std::string image;
	std::map<std::string, fake_function*> fns;
};

struct fake_function {
	fake_module* mod;
	std::string name;
	int nparams;
	unsigned long long sizes[64];
	int pointers[64];
};

typedef std::function<CUresult()> fake_op;

struct fake_stream {
	fake_ctx* ctx;
	bool capturing = false, invalid = false;
	std::string invalidWhy;
	std::vector<fake_op> ops;
};

struct fake_graph {
	fake_ctx* ctx;
	std::vector<fake_op> ops;
};

struct fake_exec {
	fake_ctx* ctx;
	std::vector<fake_op> ops;
};

static std::mutex fake_mu; // one call at a time, as the tests' devices share the library
static bool fake_inited;
static int fake_ndev = -1;
static std::vector<fake_ctx*> fake_ctxs;
static thread_local fake_ctx* fake_cur;
static std::string fake_last; // the last release's report
static thread_local std::string fake_err_text; // per thread: the caller copies it after the lock
// fake_allocs_left is how many more calls that take memory (allocations,
// module loads, contexts, streams, graphs, library handles) succeed (-1:
// all).
static long fake_allocs_left = -1;

// fake_take is false where a call that takes memory is to fail.
static bool fake_take() {
	if (fake_allocs_left == 0) return false;
	if (fake_allocs_left > 0) fake_allocs_left--;
	return true;
}

extern "C" int emu_params(const char* name, unsigned long long* sizes, int* pointers);

static int fake_devices() {
	if (fake_ndev < 0) {
		const char* s = getenv("NCSN_FAKE_GPUS");
		fake_ndev = s && *s ? atoi(s) : 1;
		if (fake_ndev < 0) fake_ndev = 0;
		for (int i = 0; i < fake_ndev; i++) {
			fake_ctxs.push_back(new fake_ctx);
			fake_ctxs.back()->dev = i;
		}
	}
	return fake_ndev;
}

// fake_capture_running is the stream whose capture (global mode) runs in
// any context, or null.
static fake_stream* fake_capture_running() {
	for (auto* c : fake_ctxs)
		for (auto* s : c->streams)
			if (s->capturing) return s;
	return nullptr;
}

// fake_unsafe fails a call that a capture in global mode forbids, and
// invalidates that capture.
static CUresult fake_unsafe(const char* call, CUresult code) {
	fake_stream* s = fake_capture_running();
	if (!s) return CUDA_SUCCESS;
	if (!s->invalid) {
		s->invalid = true;
		s->invalidWhy = std::string(call) + " while a stream was captured";
	}
	return code;
}

// fake_legacy fails work on the legacy stream while a (blocking) stream of
// the current context captures: the legacy stream would wait for it.
static CUresult fake_legacy(const char* call) {
	for (auto* s : fake_cur->streams)
		if (s->capturing) {
			if (!s->invalid) {
				s->invalid = true;
				s->invalidWhy = std::string(call) + " while a stream was captured";
			}
			return CUDA_ERROR_STREAM_CAPTURE_IMPLICIT;
		}
	return CUDA_SUCCESS;
}

// fake_ctx_ok is the error of a call that needs a current, healthy context.
static CUresult fake_ctx_ok() {
	if (!fake_inited) return CUDA_ERROR_NOT_INITIALIZED;
	if (!fake_cur || fake_cur->refs == 0) return CUDA_ERROR_INVALID_CONTEXT;
	if (fake_cur->broken) return CUDA_ERROR_ILLEGAL_ADDRESS;
	return CUDA_SUCCESS;
}

static void fake_break(fake_ctx* c, const std::string& why) {
	if (!c->broken) c->why = why;
	c->broken = true;
}

// fake_find is the allocation of any context holding bytes bytes at p.
static fake_alloc* fake_find(CUdeviceptr p, size_t bytes) {
	for (auto* c : fake_ctxs) {
		auto it = c->mem.upper_bound(p);
		if (it == c->mem.begin()) continue;
		--it;
		if (p >= it->first && p + bytes <= it->first + it->second.bytes) return &it->second;
	}
	return nullptr;
}

// fake_check_range is "" where bytes bytes at p lie in an allocation of c,
// else what is wrong.
static std::string fake_check_range(fake_ctx* c, CUdeviceptr p, size_t bytes, const char* what) {
	fake_alloc* a = fake_find(p, bytes);
	char buf[256];
	if (!a) {
		snprintf(buf, sizeof buf, "%s: %zu bytes at %#llx are not inside an allocation", what, bytes, p);
		return buf;
	}
	if (a->ctx != c) {
		snprintf(buf, sizeof buf, "%s: %#llx is memory of GPU %d, used on GPU %d", what, p, a->ctx->dev, c->dev);
		return buf;
	}
	return "";
}

// fake_check_zones breaks c where a margin of one of its allocations was
// written (put back), naming what wrote it.
static bool fake_check_zones(fake_ctx* c, const std::string& what) {
	bool ok = true;
	for (auto& [p, a] : c->mem) {
		for (size_t from : {(size_t)0, fake_redzone + a.bytes}) {
			uint32_t* w = (uint32_t*)(a.raw + from);
			for (size_t i = 0; i < fake_redzone / 4; i++)
				if (w[i] != fake_zone) {
					if (ok) {
						char buf[256];
						snprintf(buf, sizeof buf, "%s wrote outside the allocation of %zu bytes at %#llx", what.c_str(), a.bytes, p);
						fake_break(c, buf);
					}
					ok = false;
					w[i] = fake_zone;
				}
		}
	}
	return ok;
}

// fake_run runs op on stream s of the current context: recorded where s
// captures; refused on the legacy stream while another captures.
static CUresult fake_run(CUstream s, const char* call, fake_op op) {
	if (s && s->ctx != fake_cur) return CUDA_ERROR_INVALID_HANDLE;
	if (s && s->capturing) {
		s->ops.push_back(op);
		return CUDA_SUCCESS;
	}
	if (!s) {
		if (CUresult r = fake_legacy(call)) return r;
	}
	return op();
}

extern "C" {

CUresult cuInit(unsigned int flags) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
	fake_devices();
	fake_inited = true;
	return CUDA_SUCCESS;
}

CUresult cuDriverGetVersion(int* v) {
	if (!v) return CUDA_ERROR_INVALID_VALUE;
	*v = 13000;
	return CUDA_SUCCESS;
}

CUresult cuDeviceGetCount(int* n) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (!fake_inited) return CUDA_ERROR_NOT_INITIALIZED;
	if (!n) return CUDA_ERROR_INVALID_VALUE;
	*n = fake_devices();
	return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice* d, int ordinal) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (!fake_inited) return CUDA_ERROR_NOT_INITIALIZED;
	if (!d) return CUDA_ERROR_INVALID_VALUE;
	if (ordinal < 0 || ordinal >= fake_devices()) return CUDA_ERROR_INVALID_DEVICE;
	*d = ordinal;
	return CUDA_SUCCESS;
}

static CUresult fake_dev_ok(CUdevice d) {
	if (!fake_inited) return CUDA_ERROR_NOT_INITIALIZED;
	if (d < 0 || d >= fake_devices()) return CUDA_ERROR_INVALID_DEVICE;
	return CUDA_SUCCESS;
}

CUresult cuDeviceGetName(char* name, int len, CUdevice d) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (CUresult r = fake_dev_ok(d)) return r;
	if (!name || len < 1) return CUDA_ERROR_INVALID_VALUE;
	snprintf(name, len, "fake GPU %d (CPU emulation)", d);
	return CUDA_SUCCESS;
}

CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice d) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (CUresult r = fake_dev_ok(d)) return r;
	if (!bytes) return CUDA_ERROR_INVALID_VALUE;
	*bytes = (size_t)16 << 30;
	return CUDA_SUCCESS;
}

CUresult cuDeviceGetAttribute(int* v, CUdevice_attribute a, CUdevice d) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (CUresult r = fake_dev_ok(d)) return r;
	if (!v) return CUDA_ERROR_INVALID_VALUE;
	switch (a) {
	case 75: *v = 8; return CUDA_SUCCESS; // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
	case 76: *v = 0; return CUDA_SUCCESS; // …_MINOR
	}
	return CUDA_ERROR_INVALID_VALUE;
}

CUresult cuDevicePrimaryCtxRetain(CUcontext* ctx, CUdevice d) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (CUresult r = fake_dev_ok(d)) return r;
	if (!ctx) return CUDA_ERROR_INVALID_VALUE;
	if (fake_ctxs[d]->refs == 0 && !fake_take()) return CUDA_ERROR_OUT_OF_MEMORY;
	fake_ctxs[d]->refs++;
	*ctx = fake_ctxs[d];
	return CUDA_SUCCESS;
}

// fake_reset destroys what context c holds, and says what that was.
static void fake_reset(fake_ctx* c) {
	char buf[512];
	snprintf(buf, sizeof buf, "allocations=%zu host=%zu modules=%zu streams=%zu graphs=%zu execs=%zu handles=%zu",
		 c->mem.size(), c->host.size(), c->modules.size(), c->streams.size(), c->graphs.size(), c->execs.size(), c->handles.size());
	fake_last = buf;
	for (auto& [p, a] : c->mem) free(a.raw);
	c->mem.clear();
	for (void* h : c->host) free(h);
	c->host.clear();
	for (auto* m : c->modules) {
		for (auto& [n, f] : m->fns) delete f;
		delete m;
	}
	c->modules.clear();
	for (auto* s : c->streams) delete s;
	c->streams.clear();
	for (auto* g : c->graphs) delete g;
	c->graphs.clear();
	for (auto* e : c->execs) delete e;
	c->execs.clear();
	c->handles.clear(); // their memory is the handles' owners' (leaked, like the driver's)
	c->broken = false;
	c->why.clear();
}

CUresult cuDevicePrimaryCtxRelease_v2(CUdevice d) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (CUresult r = fake_dev_ok(d)) return r;
	fake_ctx* c = fake_ctxs[d];
	if (c->refs == 0) return CUDA_ERROR_INVALID_CONTEXT;
	if (--c->refs == 0) fake_reset(c);
	return CUDA_SUCCESS;
}

CUresult cuCtxSetCurrent(CUcontext c) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (!fake_inited) return CUDA_ERROR_NOT_INITIALIZED;
	if (c) {
		bool known = false;
		for (auto* k : fake_ctxs) known |= k == c;
		if (!known || c->refs == 0) return CUDA_ERROR_INVALID_CONTEXT;
	}
	fake_cur = c;
	return CUDA_SUCCESS;
}

CUresult cuCtxSynchronize() {
	std::lock_guard<std::mutex> l(fake_mu);
	if (CUresult r = fake_ctx_ok()) return r;
	return fake_unsafe("cuCtxSynchronize", CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
}

CUresult cuMemAlloc_v2(CUdeviceptr* p, size_t bytes) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (CUresult r = fake_ctx_ok()) return r;
	if (!p || bytes == 0) return CUDA_ERROR_INVALID_VALUE;
	if (CUresult r = fake_unsafe("cuMemAlloc", CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED)) return r;
	if (!fake_take()) return CUDA_ERROR_OUT_OF_MEMORY;
	size_t words = (bytes + 3) / 4;
	char* raw = nullptr; // aligned as the driver's (256 bytes and more), after the margin
	if (posix_memalign((void**)&raw, 256, words * 4 + 2 * fake_redzone)) return CUDA_ERROR_OUT_OF_MEMORY;
	uint32_t* w = (uint32_t*)raw;
	for (size_t i = 0; i < fake_redzone / 4; i++) w[i] = fake_zone;
	// NaN: what no kernel wrote shows (up to 64 MiB: the scratch of cuDNN's
	// Find, 1 GiB, stays untouched memory).
	if (words <= (16 << 20))
		for (size_t i = 0; i < words; i++) w[fake_redzone / 4 + i] = fake_poison;
	for (size_t i = 0; i < fake_redzone / 4; i++) w[fake_redzone / 4 + words + i] = fake_zone;
	CUdeviceptr d = (CUdeviceptr)(raw + fake_redzone);
	// The margin past the end starts at words·4 bytes: the allocation is
	// whole words, as the caller cannot see.
	fake_cur->mem[d] = fake_alloc{fake_cur, words * 4, raw};
	*p = d;
	return CUDA_SUCCESS;
}

CUresult cuMemFree_v2(CUdeviceptr p) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (CUresult r = fake_ctx_ok()) return r;
	if (CUresult r = fake_unsafe("cuMemFree", CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED)) return r;
	auto it = fake_cur->mem.find(p);
	if (it == fake_cur->mem.end()) return CUDA_ERROR_INVALID_VALUE;
	free(it->second.raw);
	fake_cur->mem.erase(it);
	return CUDA_SUCCESS;
}

CUresult cuMemAllocHost_v2(void** p, size_t bytes) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (CUresult r = fake_ctx_ok()) return r;
	if (!p || bytes == 0) return CUDA_ERROR_INVALID_VALUE;
	if (CUresult r = fake_unsafe("cuMemAllocHost", CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED)) return r;
	if (!fake_take()) return CUDA_ERROR_OUT_OF_MEMORY;
	*p = malloc(bytes);
	fake_cur->host.insert(*p);
	return CUDA_SUCCESS;
}

CUresult cuMemFreeHost(void* p) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (CUresult r = fake_ctx_ok()) return r;
	if (CUresult r = fake_unsafe("cuMemFreeHost", CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED)) return r;
	if (!fake_cur->host.erase(p)) return CUDA_ERROR_INVALID_VALUE;
	free(p);
	return CUDA_SUCCESS;
}

// fake_copy is a synchronous copy on the legacy stream.
static CUresult fake_copy(const char* call, void* dst, const void* src, size_t bytes, CUdeviceptr dev1, CUdeviceptr dev2) {
	if (CUresult r = fake_ctx_ok()) return r;
	if (CUresult r = fake_legacy(call)) return r;
	if (!dst || !src) return CUDA_ERROR_INVALID_VALUE;
	for (CUdeviceptr p : {dev1, dev2}) {
		if (!p) continue;
		// Copies may cross devices (unified addressing); never an allocation's bounds.
		if (!fake_find(p, bytes)) {
			char buf[256];
			snprintf(buf, sizeof buf, "%s of %zu bytes at %#llx: not inside an allocation", call, bytes, p);
			fake_break(fake_cur, buf);
			return CUDA_ERROR_ILLEGAL_ADDRESS;
		}
	}
	memmove(dst, src, bytes);
	return CUDA_SUCCESS;
}

CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, size_t bytes) {
	std::lock_guard<std::mutex> l(fake_mu);
	return fake_copy("cuMemcpyHtoD", (void*)dst, src, bytes, dst, 0);
}

CUresult cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, size_t bytes) {
	std::lock_guard<std::mutex> l(fake_mu);
	return fake_copy("cuMemcpyDtoH", dst, (const void*)src, bytes, src, 0);
}

CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t bytes) {
	std::lock_guard<std::mutex> l(fake_mu);
	return fake_copy("cuMemcpyDtoD", (void*)dst, (const void*)src, bytes, dst, src);
}

CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream s) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (CUresult r = fake_ctx_ok()) return r;
	fake_ctx* c = fake_cur;
	return fake_run(s, "cuMemcpyDtoDAsync on the legacy stream", [=]() -> CUresult {
		for (CUdeviceptr p : {dst, src})
			if (!fake_find(p, bytes)) {
				fake_break(c, "cuMemcpyDtoDAsync: not inside an allocation");
				return CUDA_ERROR_ILLEGAL_ADDRESS;
			}
		memmove((void*)dst, (const void*)src, bytes);
		return CUDA_SUCCESS;
	});
}

CUresult cuModuleLoadData(CUmodule* m, const void* image) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (CUresult r = fake_ctx_ok()) return r;
	if (!m || !image) return CUDA_ERROR_INVALID_VALUE;
	const unsigned char* b = (const unsigned char*)image;
	std::string img;
	if (!memcmp(b, "\x7f" "ELF", 4)) {
		// A CUBIN: ELF64 for machine EM_CUDA (190); its size from the
		// section headers' end.
		uint16_t machine;
		memcpy(&machine, b + 18, 2);
		if (b[4] != 2 || machine != 190) return CUDA_ERROR_INVALID_IMAGE;
		uint64_t shoff;
		uint16_t shentsize, shnum;
		memcpy(&shoff, b + 40, 8);
		memcpy(&shentsize, b + 58, 2);
		memcpy(&shnum, b + 60, 2);
		img.assign((const char*)b, shoff + (uint64_t)shentsize * shnum);
	} else {
		img = (const char*)b; // PTX: text up to its NUL
		if (img.find(".entry") == std::string::npos) return CUDA_ERROR_INVALID_IMAGE;
	}
	if (!fake_take()) return CUDA_ERROR_OUT_OF_MEMORY;
	fake_module* mod = new fake_module{fake_cur, img, {}};
	fake_cur->modules.insert(mod);
	*m = mod;
	return CUDA_SUCCESS;
}

CUresult cuModuleGetFunction(CUfunction* f, CUmodule m, const char* name) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (CUresult r = fake_ctx_ok()) return r;
	if (!f || !name) return CUDA_ERROR_INVALID_VALUE;
	if (!fake_cur->modules.count(m)) return CUDA_ERROR_INVALID_HANDLE;
	// With lazy module loading (CUDA 12.2's default) this is where a kernel
	// is loaded: not something to leave to a capture (stricter than the
	// driver's rules say; the device code looks every kernel up at open).
	if (CUresult r = fake_unsafe("cuModuleGetFunction", CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED)) return r;
	auto it = m->fns.find(name);
	if (it != m->fns.end()) {
		*f = it->second;
		return CUDA_SUCCESS;
	}
	fake_function* fn = new fake_function{m, name, 0, {}, {}};
	fn->nparams = emu_params(name, fn->sizes, fn->pointers);
	// The kernel must be in the image the driver was given, not only in
	// the emulation.
	if (fn->nparams < 0 || m->image.find(name) == std::string::npos) {
		delete fn;
		return CUDA_ERROR_NOT_FOUND;
	}
	m->fns[name] = fn;
	*f = fn;
	return CUDA_SUCCESS;
}

CUresult cuModuleUnload(CUmodule m) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (CUresult r = fake_ctx_ok()) return r;
	if (!fake_cur->modules.erase(m)) return CUDA_ERROR_INVALID_HANDLE;
	for (auto& [n, f] : m->fns) delete f;
	delete m;
	return CUDA_SUCCESS;
}

// fake_launch runs f with the parameter values vals (a copy), checking
// its pointers and the margins.
static CUresult fake_launch(fake_ctx* c, fake_function* f, dim3 g, dim3 b, std::vector<unsigned long long> vals) {
	void* ptrs[64];
	size_t off = 0;
	for (int i = 0; i < f->nparams; i++) {
		ptrs[i] = (char*)vals.data() + off;
		if (f->pointers[i]) {
			CUdeviceptr p;
			memcpy(&p, ptrs[i], sizeof p);
			std::string bad = p ? fake_check_range(c, p, 1, (f->name + ": parameter " + std::to_string(i)).c_str()) : "";
			if (!bad.empty()) {
				fake_break(c, bad);
				return CUDA_ERROR_ILLEGAL_ADDRESS;
			}
		}
		off += (f->sizes[i] + 7) / 8 * 8;
	}
	int r = emu_launch(f->name.c_str(), g.x, g.y, g.z, b.x, b.y, b.z, ptrs, ++c->launches);
	if (r != 0) {
		fake_break(c, f->name + ": " + emu_msg);
		return CUDA_ERROR_ILLEGAL_ADDRESS;
	}
	if (!fake_check_zones(c, f->name)) return CUDA_ERROR_ILLEGAL_ADDRESS;
	return CUDA_SUCCESS;
}

CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
			unsigned shared, CUstream s, void** params, void** extra) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (CUresult r = fake_ctx_ok()) return r;
	if (!f || !fake_cur->modules.count(f->mod)) return CUDA_ERROR_INVALID_HANDLE;
	if (gx < 1 || gy < 1 || gz < 1 || gx > 0x7fffffffu || gy > 65535 || gz > 65535) return CUDA_ERROR_INVALID_VALUE;
	if (bx < 1 || by < 1 || bz < 1 || bx > 1024 || by > 1024 || bz > 64 || (unsigned long long)bx * by * bz > 1024)
		return CUDA_ERROR_INVALID_VALUE;
	if (shared > 48 << 10 || extra) return CUDA_ERROR_INVALID_VALUE;
	if (f->nparams > 0 && !params) return CUDA_ERROR_INVALID_VALUE;
	// The values now, as the driver copies them at the call (a recorded
	// launch keeps them).
	std::vector<unsigned long long> vals;
	for (int i = 0; i < f->nparams; i++) {
		size_t words = (f->sizes[i] + 7) / 8;
		size_t at = vals.size();
		vals.resize(at + words);
		memcpy(&vals[at], params[i], f->sizes[i]);
	}
	fake_ctx* c = fake_cur;
	dim3 g{gx, gy, gz}, b{bx, by, bz};
	return fake_run(s, "cuLaunchKernel on the legacy stream", [=]() { return fake_launch(c, f, g, b, vals); });
}

static const char* fake_error_name(CUresult r) {
	switch (r) {
	case CUDA_SUCCESS: return "no error";
	case CUDA_ERROR_INVALID_VALUE: return "invalid argument";
	case CUDA_ERROR_OUT_OF_MEMORY: return "out of memory";
	case CUDA_ERROR_NOT_INITIALIZED: return "initialization error";
	case CUDA_ERROR_INVALID_DEVICE: return "invalid device ordinal";
	case CUDA_ERROR_INVALID_IMAGE: return "device kernel image is invalid";
	case CUDA_ERROR_INVALID_CONTEXT: return "invalid device context";
	case CUDA_ERROR_INVALID_HANDLE: return "invalid resource handle";
	case CUDA_ERROR_ILLEGAL_STATE: return "the operation is not permitted in the current state";
	case CUDA_ERROR_NOT_FOUND: return "named symbol not found";
	case CUDA_ERROR_ILLEGAL_ADDRESS: return "an illegal memory access was encountered";
	case CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED: return "operation not permitted when stream is capturing";
	case CUDA_ERROR_STREAM_CAPTURE_INVALIDATED: return "operation failed due to a previous error during capture";
	case CUDA_ERROR_STREAM_CAPTURE_IMPLICIT: return "operation would make the legacy stream depend on a capturing blocking stream";
	}
	return nullptr;
}

CUresult cuGetErrorString(CUresult r, const char** s) {
	std::lock_guard<std::mutex> l(fake_mu);
	const char* name = fake_error_name(r);
	if (!s) return CUDA_ERROR_INVALID_VALUE;
	if (!name) {
		*s = nullptr;
		return CUDA_ERROR_INVALID_VALUE;
	}
	// The fake's detail after the driver's words, for the tests' messages.
	fake_err_text = name;
	if (r == CUDA_ERROR_ILLEGAL_ADDRESS && fake_cur && !fake_cur->why.empty()) fake_err_text += " (fake driver: " + fake_cur->why + ")";
	for (auto* c : fake_ctxs)
		for (auto* st : c->streams)
			if (r == CUDA_ERROR_STREAM_CAPTURE_INVALIDATED && !st->invalidWhy.empty()) fake_err_text += " (fake driver: " + st->invalidWhy + ")";
	*s = fake_err_text.c_str();
	return CUDA_SUCCESS;
}

CUresult cuStreamCreate(CUstream* s, unsigned flags) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (CUresult r = fake_ctx_ok()) return r;
	if (!s || flags > 1) return CUDA_ERROR_INVALID_VALUE;
	if (!fake_take()) return CUDA_ERROR_OUT_OF_MEMORY;
	fake_stream* st = new fake_stream{fake_cur};
	fake_cur->streams.insert(st);
	*s = st;
	return CUDA_SUCCESS;
}

CUresult cuStreamDestroy_v2(CUstream s) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (CUresult r = fake_ctx_ok()) return r;
	if (!fake_cur->streams.count(s)) return CUDA_ERROR_INVALID_HANDLE;
	if (s->capturing) return CUDA_ERROR_ILLEGAL_STATE;
	fake_cur->streams.erase(s);
	delete s;
	return CUDA_SUCCESS;
}

CUresult cuStreamBeginCapture_v2(CUstream s, CUstreamCaptureMode mode) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (CUresult r = fake_ctx_ok()) return r;
	if (!s) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED; // the legacy stream cannot be captured
	if (!fake_cur->streams.count(s)) return CUDA_ERROR_INVALID_HANDLE;
	if (mode != 0) return CUDA_ERROR_INVALID_VALUE; // only global mode is emulated
	if (s->capturing) return CUDA_ERROR_ILLEGAL_STATE;
	s->capturing = true;
	s->invalid = false;
	s->invalidWhy.clear();
	s->ops.clear();
	return CUDA_SUCCESS;
}

CUresult cuStreamEndCapture(CUstream s, CUgraph* g) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (CUresult r = fake_ctx_ok()) return r;
	if (!g) return CUDA_ERROR_INVALID_VALUE;
	if (!s || !fake_cur->streams.count(s)) return CUDA_ERROR_INVALID_HANDLE;
	if (!s->capturing) return CUDA_ERROR_ILLEGAL_STATE;
	s->capturing = false;
	*g = nullptr;
	if (s->invalid) {
		s->ops.clear();
		return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
	}
	fake_graph* gr = new fake_graph{fake_cur, std::move(s->ops)};
	s->ops.clear();
	fake_cur->graphs.insert(gr);
	*g = gr;
	return CUDA_SUCCESS;
}

CUresult cuGraphInstantiateWithFlags(CUgraphExec* e, CUgraph g, unsigned long long flags) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (CUresult r = fake_ctx_ok()) return r;
	if (!e || flags != 0) return CUDA_ERROR_INVALID_VALUE;
	if (!fake_cur->graphs.count(g)) return CUDA_ERROR_INVALID_HANDLE;
	if (!fake_take()) return CUDA_ERROR_OUT_OF_MEMORY;
	fake_exec* ex = new fake_exec{fake_cur, g->ops};
	fake_cur->execs.insert(ex);
	*e = ex;
	return CUDA_SUCCESS;
}

CUresult cuGraphLaunch(CUgraphExec e, CUstream s) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (CUresult r = fake_ctx_ok()) return r;
	if (!fake_cur->execs.count(e)) return CUDA_ERROR_INVALID_HANDLE;
	if (s && (!fake_cur->streams.count(s) || s->capturing)) return CUDA_ERROR_INVALID_HANDLE;
	if (!s)
		if (CUresult r = fake_legacy("cuGraphLaunch on the legacy stream")) return r;
	for (auto& op : e->ops)
		if (CUresult r = op()) return r;
	return CUDA_SUCCESS;
}

CUresult cuGraphExecDestroy(CUgraphExec e) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (CUresult r = fake_ctx_ok()) return r;
	if (!fake_cur->execs.erase(e)) return CUDA_ERROR_INVALID_HANDLE;
	delete e;
	return CUDA_SUCCESS;
}

CUresult cuGraphDestroy(CUgraph g) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (CUresult r = fake_ctx_ok()) return r;
	if (!fake_cur->graphs.erase(g)) return CUDA_ERROR_INVALID_HANDLE;
	delete g;
	return CUDA_SUCCESS;
}

// fake_set_devices makes the count of devices n (0 to 16), while no
// context is held; -1 otherwise.
int fake_set_devices(int n) {
	std::lock_guard<std::mutex> l(fake_mu);
	fake_devices();
	if (n < 0 || n > 16) return -1;
	for (auto* c : fake_ctxs)
		if (c->refs > 0) return -1;
	for (auto* c : fake_ctxs) delete c;
	fake_ctxs.clear();
	fake_ndev = n;
	for (int i = 0; i < n; i++) {
		fake_ctxs.push_back(new fake_ctx);
		fake_ctxs.back()->dev = i;
	}
	return 0;
}

// fake_fail_allocs_after makes every cuMemAlloc after the next n fail
// with CUDA_ERROR_OUT_OF_MEMORY (n < 0: none fails).
void fake_fail_allocs_after(long n) {
	std::lock_guard<std::mutex> l(fake_mu);
	fake_allocs_left = n < 0 ? -1 : n;
}

// fake_state is every device's references and objects now ("GPU 0:
// refs=0 allocations=0 …; GPU 1: …").
const char* fake_state() {
	std::lock_guard<std::mutex> l(fake_mu);
	fake_devices();
	std::string out;
	for (auto* c : fake_ctxs) {
		char buf[256];
		snprintf(buf, sizeof buf, "%sGPU %d: refs=%d allocations=%zu host=%zu modules=%zu streams=%zu handles=%zu", out.empty() ? "" : "; ", c->dev,
			 c->refs, c->mem.size(), c->host.size(), c->modules.size(), c->streams.size(), c->handles.size());
		out += buf;
	}
	fake_err_text = out;
	return fake_err_text.c_str();
}

// fake_report is what the last context to lose its last reference still
// held then (every kind of object: "allocations=0 host=0 …").
const char* fake_report() {
	std::lock_guard<std::mutex> l(fake_mu);
	fake_err_text = fake_last;
	return fake_err_text.c_str();
}

// ---- cuBLAS (cublas_api.h) ----

typedef int cublasStatus_t;
typedef int cublasOperation_t;
typedef int cublasMath_t;
enum {
	CUBLAS_STATUS_SUCCESS = 0,
	CUBLAS_STATUS_NOT_INITIALIZED = 1,
	CUBLAS_STATUS_INVALID_VALUE = 7,
	CUBLAS_STATUS_EXECUTION_FAILED = 13,
};

struct fake_blas {
	fake_ctx* ctx;
	CUstream stream = nullptr;
	int math = 0;
};
typedef fake_blas* cublasHandle_t;
static std::set<fake_blas*> fake_blases;

cublasStatus_t cublasCreate_v2(cublasHandle_t* h) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (fake_ctx_ok() || fake_unsafe("cublasCreate", 1)) return CUBLAS_STATUS_NOT_INITIALIZED;
	if (!h) return CUBLAS_STATUS_INVALID_VALUE;
	if (!fake_take()) return 3; // CUBLAS_STATUS_ALLOC_FAILED
	*h = new fake_blas{fake_cur};
	fake_blases.insert(*h);
	fake_cur->handles.insert(*h);
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy_v2(cublasHandle_t h) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (!fake_blases.erase(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
	h->ctx->handles.erase(h);
	delete h;
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetVersion_v2(cublasHandle_t h, int* v) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (!fake_blases.count(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
	if (!v) return CUBLAS_STATUS_INVALID_VALUE;
	*v = 130000; // major·10000 + minor·100 + patch
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (!fake_blases.count(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
	int base = mode & 0xf; // CUBLAS_DEFAULT_MATH 0, TENSOR_OP 1, PEDANTIC 2, TF32 3
	if (base > 3 || (mode & ~0x1f)) return CUBLAS_STATUS_INVALID_VALUE;
	h->math = mode;
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream_v2(cublasHandle_t h, CUstream s) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (!fake_blases.count(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
	if (s && !h->ctx->streams.count(s)) return CUBLAS_STATUS_INVALID_VALUE;
	h->stream = s;
	return CUBLAS_STATUS_SUCCESS;
}

// fake_col is element (i, j) of column-major A (lda) under op t.
static inline double fake_col(const float* a, int lda, int t, int i, int j) {
	return t == 0 ? a[i + (size_t)j * lda] : a[j + (size_t)i * lda];
}

cublasStatus_t cublasSgemm_v2(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
			      const float* alpha, const float* A, int lda, const float* B, int ldb, const float* beta, float* C, int ldc) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (!fake_blases.count(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
	if (fake_ctx_ok() || fake_cur != h->ctx) return CUBLAS_STATUS_EXECUTION_FAILED;
	if ((ta != 0 && ta != 1) || (tb != 0 && tb != 1) || m < 0 || n < 0 || k < 0) return CUBLAS_STATUS_INVALID_VALUE;
	int ra = ta == 0 ? m : k, rb = tb == 0 ? k : n; // the stored rows of A and B
	if (lda < (ra > 1 ? ra : 1) || ldb < (rb > 1 ? rb : 1) || ldc < (m > 1 ? m : 1)) return CUBLAS_STATUS_INVALID_VALUE;
	if (!alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
	if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
	// The scalars now (host pointer mode: read at the call, also when
	// recorded).
	float al = *alpha, be = *beta;
	int ca = ta == 0 ? k : m, cb = tb == 0 ? n : k; // the stored columns
	fake_ctx* c = fake_cur;
	CUresult r = fake_run(h->stream, "cublasSgemm on the legacy stream", [=]() -> CUresult {
		std::string bad;
		if (k > 0) {
			bad = fake_check_range(c, (CUdeviceptr)A, 4 * ((size_t)lda * (ca - 1) + ra), "cublasSgemm A");
			if (bad.empty()) bad = fake_check_range(c, (CUdeviceptr)B, 4 * ((size_t)ldb * (cb - 1) + rb), "cublasSgemm B");
		}
		if (bad.empty()) bad = fake_check_range(c, (CUdeviceptr)C, 4 * ((size_t)ldc * (n - 1) + m), "cublasSgemm C");
		if (!bad.empty()) {
			fake_break(c, bad);
			return CUDA_ERROR_ILLEGAL_ADDRESS;
		}
		for (int j = 0; j < n; j++)
			for (int i = 0; i < m; i++) {
				double s = 0;
				for (int p = 0; p < k; p++) s += fake_col(A, lda, ta, i, p) * fake_col(B, ldb, tb, p, j);
				double v = (double)al * s;
				if (be != 0) v += (double)be * C[i + (size_t)j * ldc]; // β = 0: C is not read
				C[i + (size_t)j * ldc] = (float)v;
			}
		return CUDA_SUCCESS;
	});
	return r == CUDA_SUCCESS ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}


// ---- cuDNN's legacy convolutions (cudnn_graph.h, cudnn_cnn.h) ----

typedef int cudnnStatus_t;
enum { // cuDNN 9's numbers
	CUDNN_STATUS_SUCCESS = 0,
	CUDNN_STATUS_NOT_INITIALIZED = 1001,
	CUDNN_STATUS_BAD_PARAM = 2000,
	CUDNN_STATUS_NOT_SUPPORTED = 3000,
	CUDNN_STATUS_ALLOC_FAILED = 4003, // …_INTERNAL_ERROR_HOST_ALLOCATION_FAILED
	CUDNN_STATUS_EXECUTION_FAILED = 5000,
};

struct fake_dnn {
	fake_ctx* ctx;
	CUstream stream = nullptr;
};
struct fake_tensor {
	bool set = false;
	int n, c, h, w, ns, cs, hs, ws;
};
struct fake_filter {
	bool set = false;
	int k, c, h, w;
};
struct fake_conv {
	bool set = false;
	int padH, padW, u, v, dilH, dilW, mode, math = 0;
};
typedef fake_dnn* cudnnHandle_t;
typedef fake_tensor* cudnnTensorDescriptor_t;
typedef fake_filter* cudnnFilterDescriptor_t;
typedef fake_conv* cudnnConvolutionDescriptor_t;
static std::set<fake_dnn*> fake_dnns;
static std::set<void*> fake_descs;

// The algorithm perf record (cudnnConvolution{Fwd,BwdData,BwdFilter}AlgoPerf_t).
struct fake_perf {
	int algo;
	cudnnStatus_t status;
	float time;
	size_t memory;
	int determinism; // CUDNN_DETERMINISTIC = 1
	int mathType;    // DEFAULT 0, TENSOR_OP 1, TENSOR_OP_ALLOW_CONVERSION 2, FMA 3
	int reserved[3];
};
static_assert(sizeof(fake_perf) == 48, "the perf record is 48 bytes");

// What the fake offers, per direction (0 forward, 1 data, 2 filter), in
// the order of its heuristics: one algorithm for tensor-op math only, one
// nondeterministic, one unsupported, one wanting more than 1 GiB of
// workspace, and deterministic FMA ones — so the caller's choice among
// them is tested. ws is the workspace at FMA math (twice at tensor ops).
struct fake_algo {
	int algo, status, det, tensorOnly;
	size_t ws;
	float time;
};
static const fake_algo fake_algos[3][6] = {
	{{1, 0, 1, 1, 4096, 0.1f}, {0, 0, 0, 0, 0, 0.2f}, {4, CUDNN_STATUS_NOT_SUPPORTED, 1, 0, 0, 0.3f}, {5, 0, 1, 0, (size_t)3 << 30, 0.4f}, {6, 0, 1, 0, 65536, 0.5f}, {2, 0, 1, 0, 256, 0.9f}},
	{{5, 0, 1, 1, 8192, 0.1f}, {0, 0, 0, 0, 0, 0.2f}, {2, CUDNN_STATUS_NOT_SUPPORTED, 1, 0, 0, 0.3f}, {3, 0, 1, 0, (size_t)3 << 30, 0.4f}, {4, 0, 1, 0, 32768, 0.5f}, {1, 0, 1, 0, 512, 0.9f}},
	{{5, 0, 1, 1, 8192, 0.1f}, {0, 0, 0, 0, 0, 0.2f}, {6, CUDNN_STATUS_NOT_SUPPORTED, 1, 0, 0, 0.3f}, {2, 0, 1, 0, (size_t)3 << 30, 0.4f}, {1, 0, 1, 0, 16384, 0.5f}, {3, 0, 1, 0, 1024, 0.9f}},
};

static const fake_algo* fake_algo_of(int dir, int algo) {
	for (auto& a : fake_algos[dir])
		if (a.algo == algo) return &a;
	return nullptr;
}

static size_t fake_ws(const fake_algo* a, int math) { return math == 1 || math == 2 ? 2 * a->ws : a->ws; }

size_t cudnnGetVersion() { return 90100; }

const char* cudnnGetErrorString(cudnnStatus_t s) {
	switch (s) {
	case CUDNN_STATUS_SUCCESS: return "CUDNN_STATUS_SUCCESS";
	case CUDNN_STATUS_NOT_INITIALIZED: return "CUDNN_STATUS_NOT_INITIALIZED";
	case CUDNN_STATUS_ALLOC_FAILED: return "CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED";
	case CUDNN_STATUS_BAD_PARAM: return "CUDNN_STATUS_BAD_PARAM";
	case CUDNN_STATUS_EXECUTION_FAILED: return "CUDNN_STATUS_EXECUTION_FAILED";
	case CUDNN_STATUS_NOT_SUPPORTED: return "CUDNN_STATUS_NOT_SUPPORTED";
	}
	return "CUDNN_STATUS_UNKNOWN";
}

cudnnStatus_t cudnnCreate(cudnnHandle_t* h) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (fake_ctx_ok() || fake_unsafe("cudnnCreate", 1)) return CUDNN_STATUS_NOT_INITIALIZED;
	if (!h) return CUDNN_STATUS_BAD_PARAM;
	if (!fake_take()) return CUDNN_STATUS_ALLOC_FAILED;
	*h = new fake_dnn{fake_cur};
	fake_dnns.insert(*h);
	fake_cur->handles.insert(*h);
	return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroy(cudnnHandle_t h) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (!fake_dnns.erase(h)) return CUDNN_STATUS_BAD_PARAM;
	h->ctx->handles.erase(h);
	delete h;
	return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetStream(cudnnHandle_t h, CUstream s) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (!fake_dnns.count(h)) return CUDNN_STATUS_BAD_PARAM;
	if (s && !h->ctx->streams.count(s)) return CUDNN_STATUS_BAD_PARAM;
	h->stream = s;
	return CUDNN_STATUS_SUCCESS;
}

extern "C++" {
template <class T> static cudnnStatus_t fake_new(T** d) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (!d) return CUDNN_STATUS_BAD_PARAM;
	*d = new T;
	fake_descs.insert(*d);
	return CUDNN_STATUS_SUCCESS;
}

template <class T> static cudnnStatus_t fake_delete(T* d) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (!fake_descs.erase(d)) return CUDNN_STATUS_BAD_PARAM;
	delete d;
	return CUDNN_STATUS_SUCCESS;
}

} // extern "C++"

cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t* d) { return fake_new(d); }
cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t* d) { return fake_new(d); }
cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t* d) { return fake_new(d); }
cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t d) { return fake_delete(d); }
cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t d) { return fake_delete(d); }
cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t d) { return fake_delete(d); }

cudnnStatus_t cudnnSetTensor4dDescriptorEx(cudnnTensorDescriptor_t d, int dtype, int n, int c, int h, int w, int ns, int cs, int hs, int ws) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (!fake_descs.count(d)) return CUDNN_STATUS_BAD_PARAM;
	if (dtype != 0) return CUDNN_STATUS_NOT_SUPPORTED; // CUDNN_DATA_FLOAT only
	if (n < 1 || c < 1 || h < 1 || w < 1 || ns < 1 || cs < 1 || hs < 1 || ws < 1) return CUDNN_STATUS_BAD_PARAM;
	*d = fake_tensor{true, n, c, h, w, ns, cs, hs, ws};
	return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, int dtype, int format, int k, int c, int h, int w) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (!fake_descs.count(d)) return CUDNN_STATUS_BAD_PARAM;
	if (dtype != 0 || format != 0) return CUDNN_STATUS_NOT_SUPPORTED; // float, NCHW (KCRS)
	if (k < 1 || c < 1 || h < 1 || w < 1) return CUDNN_STATUS_BAD_PARAM;
	*d = fake_filter{true, k, c, h, w};
	return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int padH, int padW, int u, int v, int dilH, int dilW, int mode, int dtype) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (!fake_descs.count(d)) return CUDNN_STATUS_BAD_PARAM;
	if (padH < 0 || padW < 0 || u < 1 || v < 1 || dilH < 1 || dilW < 1 || (mode != 0 && mode != 1)) return CUDNN_STATUS_BAD_PARAM;
	if (dtype != 0) return CUDNN_STATUS_NOT_SUPPORTED;
	int math = d->math;
	*d = fake_conv{true, padH, padW, u, v, dilH, dilW, mode, math};
	return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, int math) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (!fake_descs.count(d)) return CUDNN_STATUS_BAD_PARAM;
	if (math < 0 || math > 3) return CUDNN_STATUS_BAD_PARAM;
	d->math = math;
	return CUDNN_STATUS_SUCCESS;
}

// fake_geometry checks that x, w, conv and y describe one convolution.
static cudnnStatus_t fake_geometry(fake_tensor* x, fake_filter* w, fake_conv* cv, fake_tensor* y) {
	for (void* p : {(void*)x, (void*)w, (void*)cv, (void*)y})
		if (!fake_descs.count(p)) return CUDNN_STATUS_BAD_PARAM;
	if (!x->set || !w->set || !cv->set || !y->set) return CUDNN_STATUS_BAD_PARAM;
	int oh = (x->h + 2 * cv->padH - cv->dilH * (w->h - 1) - 1) / cv->u + 1;
	int ow = (x->w + 2 * cv->padW - cv->dilW * (w->w - 1) - 1) / cv->v + 1;
	if (x->c != w->c || y->n != x->n || y->c != w->k || y->h != oh || y->w != ow) return CUDNN_STATUS_BAD_PARAM;
	return CUDNN_STATUS_SUCCESS;
}

// fake_extent is the bytes a tensor spans.
static size_t fake_extent(fake_tensor* t) {
	return 4 * ((size_t)(t->n - 1) * t->ns + (size_t)(t->c - 1) * t->cs + (size_t)(t->h - 1) * t->hs + (size_t)(t->w - 1) * t->ws + 1);
}

static cudnnStatus_t fake_heuristics(int dir, fake_conv* cv, int want, int* got, fake_perf* perf) {
	if (!got || !perf || want < 1) return CUDNN_STATUS_BAD_PARAM;
	int n = 0;
	for (auto& a : fake_algos[dir]) {
		if (n == want) break;
		bool tensor = a.tensorOnly;
		if (tensor && cv->math != 1 && cv->math != 2) continue; // tensor-op algorithms where the descriptor allows them
		perf[n] = fake_perf{a.algo, a.status, -1, fake_ws(&a, tensor ? 1 : 3), a.det, tensor ? 1 : 3, {}};
		n++;
	}
	*got = n;
	return CUDNN_STATUS_SUCCESS;
}

static cudnnStatus_t fake_dnn_ok(cudnnHandle_t h) {
	if (!fake_dnns.count(h)) return CUDNN_STATUS_BAD_PARAM;
	if (fake_ctx_ok() || fake_cur != h->ctx) return CUDNN_STATUS_EXECUTION_FAILED;
	return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t h, cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w, cudnnConvolutionDescriptor_t cv, cudnnTensorDescriptor_t y, int want, int* got, fake_perf* perf) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (cudnnStatus_t r = fake_dnn_ok(h)) return r;
	if (cudnnStatus_t r = fake_geometry(x, w, cv, y)) return r;
	return fake_heuristics(0, cv, want, got, perf);
}

cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnHandle_t h, cudnnFilterDescriptor_t w, cudnnTensorDescriptor_t dy, cudnnConvolutionDescriptor_t cv, cudnnTensorDescriptor_t dx, int want, int* got, fake_perf* perf) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (cudnnStatus_t r = fake_dnn_ok(h)) return r;
	if (cudnnStatus_t r = fake_geometry(dx, w, cv, dy)) return r;
	return fake_heuristics(1, cv, want, got, perf);
}

cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnHandle_t h, cudnnTensorDescriptor_t x, cudnnTensorDescriptor_t dy, cudnnConvolutionDescriptor_t cv, cudnnFilterDescriptor_t dw, int want, int* got, fake_perf* perf) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (cudnnStatus_t r = fake_dnn_ok(h)) return r;
	if (cudnnStatus_t r = fake_geometry(x, dw, cv, dy)) return r;
	return fake_heuristics(2, cv, want, got, perf);
}

static cudnnStatus_t fake_ws_size(int dir, fake_conv* cv, int algo, size_t* bytes) {
	const fake_algo* a = fake_algo_of(dir, algo);
	if (!bytes) return CUDNN_STATUS_BAD_PARAM;
	if (!a || a->status != 0 || (a->tensorOnly && cv->math != 1 && cv->math != 2)) return CUDNN_STATUS_NOT_SUPPORTED;
	*bytes = fake_ws(a, cv->math);
	return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t h, cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w, cudnnConvolutionDescriptor_t cv, cudnnTensorDescriptor_t y, int algo, size_t* bytes) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (cudnnStatus_t r = fake_dnn_ok(h)) return r;
	if (cudnnStatus_t r = fake_geometry(x, w, cv, y)) return r;
	return fake_ws_size(0, cv, algo, bytes);
}

cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnHandle_t h, cudnnFilterDescriptor_t w, cudnnTensorDescriptor_t dy, cudnnConvolutionDescriptor_t cv, cudnnTensorDescriptor_t dx, int algo, size_t* bytes) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (cudnnStatus_t r = fake_dnn_ok(h)) return r;
	if (cudnnStatus_t r = fake_geometry(dx, w, cv, dy)) return r;
	return fake_ws_size(1, cv, algo, bytes);
}

cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnnHandle_t h, cudnnTensorDescriptor_t x, cudnnTensorDescriptor_t dy, cudnnConvolutionDescriptor_t cv, cudnnFilterDescriptor_t dw, int algo, size_t* bytes) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (cudnnStatus_t r = fake_dnn_ok(h)) return r;
	if (cudnnStatus_t r = fake_geometry(x, dw, cv, dy)) return r;
	return fake_ws_size(2, cv, algo, bytes);
}

// fake_convolve is one direction (0 forward: y from x and w; 1 data: dx
// (x) from w and dy (y); 2 filter: dw (w) from x and dy) in float64,
// out = α·result + β·out (β = 0: out is not read). The descriptors are
// copied: a recorded call keeps them as they were.
static cudnnStatus_t fake_convolve(fake_ctx* c, int dir, fake_tensor x, fake_filter w, fake_conv cv, fake_tensor y,
				   float* X, float* W, float* Y, float alpha, float beta, float* ws, size_t wsBytes, size_t wsNeed) {
	std::string bad = fake_check_range(c, (CUdeviceptr)X, fake_extent(&x), "cuDNN x");
	if (bad.empty()) bad = fake_check_range(c, (CUdeviceptr)Y, fake_extent(&y), "cuDNN y");
	if (bad.empty()) bad = fake_check_range(c, (CUdeviceptr)W, 4 * (size_t)w.k * w.c * w.h * w.w, "cuDNN w");
	if (bad.empty() && wsNeed > 0) bad = fake_check_range(c, (CUdeviceptr)ws, wsBytes, "cuDNN workspace");
	if (!bad.empty()) {
		fake_break(c, bad);
		return CUDNN_STATUS_EXECUTION_FAILED;
	}
	// The algorithm uses its workspace: whatever shares it is overwritten.
	for (size_t i = 0; i < wsNeed / 4; i++) ((uint32_t*)ws)[i] = fake_poison;
	auto xi = [&](int n, int ch, int h, int ww) { return (size_t)n * x.ns + (size_t)ch * x.cs + (size_t)h * x.hs + (size_t)ww * x.ws; };
	auto yi = [&](int n, int k, int h, int ww) { return (size_t)n * y.ns + (size_t)k * y.cs + (size_t)h * y.hs + (size_t)ww * y.ws; };
	auto wi = [&](int k, int ch, int r, int s) {
		if (cv.mode == 0) r = w.h - 1 - r, s = w.w - 1 - s; // CUDNN_CONVOLUTION flips the filter
		return (((size_t)k * w.c + ch) * w.h + r) * w.w + s;
	};
	size_t outN = dir == 0 ? (size_t)y.n * y.c * y.h * y.w : dir == 1 ? (size_t)x.n * x.c * x.h * x.w : (size_t)w.k * w.c * w.h * w.w;
	std::vector<double> acc(outN, 0.0);
	auto ai = [&](int n, int k, int oh, int ow, int ch, int hh, int wx, int r, int s) -> size_t {
		if (dir == 0) return (((size_t)n * y.c + k) * y.h + oh) * y.w + ow;
		if (dir == 1) return (((size_t)n * x.c + ch) * x.h + hh) * x.w + wx;
		return (((size_t)k * w.c + ch) * w.h + r) * w.w + s;
	};
	for (int n = 0; n < x.n; n++)
		for (int k = 0; k < w.k; k++)
			for (int oh = 0; oh < y.h; oh++)
				for (int ow = 0; ow < y.w; ow++)
					for (int ch = 0; ch < w.c; ch++)
						for (int r = 0; r < w.h; r++)
							for (int s = 0; s < w.w; s++) {
								int hh = oh * cv.u - cv.padH + r * cv.dilH, wx = ow * cv.v - cv.padW + s * cv.dilW;
								if (hh < 0 || hh >= x.h || wx < 0 || wx >= x.w) continue;
								double a = dir == 2 ? (double)Y[yi(n, k, oh, ow)] : (double)W[wi(k, ch, r, s)];
								double b = dir == 0 ? (double)X[xi(n, ch, hh, wx)] : dir == 1 ? (double)Y[yi(n, k, oh, ow)] : (double)X[xi(n, ch, hh, wx)];
								int rr = r, ss = s;
								if (dir == 2 && cv.mode == 0) rr = w.h - 1 - r, ss = w.w - 1 - s;
								acc[ai(n, k, oh, ow, ch, hh, wx, rr, ss)] += a * b;
							}
	size_t i = 0;
	auto put = [&](float* o) {
		double v = (double)alpha * acc[i++];
		if (beta != 0) v += (double)beta * *o;
		*o = (float)v;
	};
	if (dir == 0) {
		for (int n = 0; n < y.n; n++)
			for (int k = 0; k < y.c; k++)
				for (int h = 0; h < y.h; h++)
					for (int ww = 0; ww < y.w; ww++) put(&Y[yi(n, k, h, ww)]);
	} else if (dir == 1) {
		for (int n = 0; n < x.n; n++)
			for (int ch = 0; ch < x.c; ch++)
				for (int h = 0; h < x.h; h++)
					for (int ww = 0; ww < x.w; ww++) put(&X[xi(n, ch, h, ww)]);
	} else {
		for (size_t j = 0; j < outN; j++) put(&W[j]);
	}
	if (!fake_check_zones(c, "cuDNN")) return CUDNN_STATUS_EXECUTION_FAILED;
	return CUDNN_STATUS_SUCCESS;
}

// fake_dnn_call checks and runs (or records) one direction with algo.
static cudnnStatus_t fake_dnn_call(cudnnHandle_t h, int dir, fake_tensor* x, fake_filter* w, fake_conv* cv, fake_tensor* y,
				   float* X, float* W, float* Y, const void* alpha, const void* beta, int algo, void* ws, size_t wsBytes) {
	if (cudnnStatus_t r = fake_dnn_ok(h)) return r;
	if (cudnnStatus_t r = fake_geometry(x, w, cv, y)) return r;
	if (!alpha || !beta) return CUDNN_STATUS_BAD_PARAM;
	size_t need;
	if (cudnnStatus_t r = fake_ws_size(dir, cv, algo, &need)) return r;
	if (wsBytes < need || (need > 0 && !ws)) return CUDNN_STATUS_BAD_PARAM;
	float al = *(const float*)alpha, be = *(const float*)beta; // host pointers, read now
	fake_ctx* c = fake_cur;
	fake_tensor xs = *x, ys = *y;
	fake_filter wf = *w;
	fake_conv cf = *cv;
	CUresult r = fake_run(h->stream, "a cuDNN convolution on the legacy stream", [=]() -> CUresult {
		return fake_convolve(c, dir, xs, wf, cf, ys, X, W, Y, al, be, (float*)ws, wsBytes, need) ? CUDA_ERROR_ILLEGAL_ADDRESS : CUDA_SUCCESS;
	});
	return r == CUDA_SUCCESS ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_EXECUTION_FAILED;
}

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t h, const void* alpha, cudnnTensorDescriptor_t xd, const void* x, cudnnFilterDescriptor_t wd, const void* w,
				      cudnnConvolutionDescriptor_t cv, int algo, void* ws, size_t wsBytes, const void* beta, cudnnTensorDescriptor_t yd, void* y) {
	std::lock_guard<std::mutex> l(fake_mu);
	return fake_dnn_call(h, 0, xd, wd, cv, yd, (float*)x, (float*)w, (float*)y, alpha, beta, algo, ws, wsBytes);
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t h, const void* alpha, cudnnFilterDescriptor_t wd, const void* w, cudnnTensorDescriptor_t dyd, const void* dy,
					   cudnnConvolutionDescriptor_t cv, int algo, void* ws, size_t wsBytes, const void* beta, cudnnTensorDescriptor_t dxd, void* dx) {
	std::lock_guard<std::mutex> l(fake_mu);
	return fake_dnn_call(h, 1, dxd, wd, cv, dyd, (float*)dx, (float*)w, (float*)dy, alpha, beta, algo, ws, wsBytes);
}

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t h, const void* alpha, cudnnTensorDescriptor_t xd, const void* x, cudnnTensorDescriptor_t dyd, const void* dy,
					     cudnnConvolutionDescriptor_t cv, int algo, void* ws, size_t wsBytes, const void* beta, cudnnFilterDescriptor_t dwd, void* dw) {
	std::lock_guard<std::mutex> l(fake_mu);
	return fake_dnn_call(h, 2, xd, dwd, cv, dyd, (float*)x, (float*)dw, (float*)dy, alpha, beta, algo, ws, wsBytes);
}

// fake_find runs every algorithm the descriptor's math allows on the given
// buffers, as cuDNN's Find, and lists them fastest first; the output
// buffer is left with no result (NaN), as after a Find its contents are
// the last algorithm's scratch.
static cudnnStatus_t fake_find_algos(cudnnHandle_t h, int dir, fake_tensor* x, fake_filter* w, fake_conv* cv, fake_tensor* y,
				     float* X, float* W, float* Y, int want, int* got, fake_perf* perf, void* ws, size_t wsBytes) {
	if (cudnnStatus_t r = fake_dnn_ok(h)) return r;
	if (cudnnStatus_t r = fake_geometry(x, w, cv, y)) return r;
	if (fake_unsafe("cuDNN's Find", 1)) return CUDNN_STATUS_NOT_SUPPORTED;
	if (!got || !perf || want < 1) return CUDNN_STATUS_BAD_PARAM;
	fake_ctx* c = fake_cur;
	std::vector<fake_perf> out;
	bool ran = false; // one run checks the buffers (the results are dropped)
	for (auto& a : fake_algos[dir]) {
		bool tensor = a.tensorOnly;
		if (tensor && cv->math != 1 && cv->math != 2) continue;
		size_t need = fake_ws(&a, tensor ? 1 : 3);
		// Measured: tensor cores fastest, then the reverse of the heuristics' order;
		// the last FMA algorithm (measured fastest of them) reported with
		// math type DEFAULT, as a library may name an FMA descriptor's math.
		bool last = &a == &fake_algos[dir][5];
		fake_perf p{a.algo, a.status, tensor ? 0.05f : 1.0f - a.time, need, a.det, tensor ? 1 : (last ? 0 : 3), {}};
		if (a.status == 0 && need > wsBytes) p.status = CUDNN_STATUS_ALLOC_FAILED;
		if (p.status == 0 && !ran) {
			ran = true;
			float one = 1, zero = 0;
			fake_conv cf = *cv;
			cf.math = p.mathType;
			if (cudnnStatus_t s = fake_convolve(c, dir, *x, *w, cf, *y, X, W, Y, one, zero, (float*)ws, wsBytes, need)) return s;
		}
		if (p.status != 0) p.time = -1;
		out.push_back(p);
	}
	std::stable_sort(out.begin(), out.end(), [](const fake_perf& a, const fake_perf& b) {
		if ((a.status == 0) != (b.status == 0)) return a.status == 0;
		return a.time < b.time;
	});
	float* o = dir == 0 ? Y : dir == 1 ? X : W;
	size_t bytes = dir == 0 ? fake_extent(y) : dir == 1 ? fake_extent(x) : 4 * (size_t)w->k * w->c * w->h * w->w;
	for (size_t i = 0; i < bytes / 4; i++) ((uint32_t*)o)[i] = fake_poison;
	int n = 0;
	for (auto& p : out)
		if (n < want) perf[n++] = p;
	*got = n;
	return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnFindConvolutionForwardAlgorithmEx(cudnnHandle_t h, cudnnTensorDescriptor_t xd, const void* x, cudnnFilterDescriptor_t wd, const void* w,
						     cudnnConvolutionDescriptor_t cv, cudnnTensorDescriptor_t yd, void* y, int want, int* got, fake_perf* perf, void* ws, size_t wsBytes) {
	std::lock_guard<std::mutex> l(fake_mu);
	return fake_find_algos(h, 0, xd, wd, cv, yd, (float*)x, (float*)w, (float*)y, want, got, perf, ws, wsBytes);
}

cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithmEx(cudnnHandle_t h, cudnnFilterDescriptor_t wd, const void* w, cudnnTensorDescriptor_t dyd, const void* dy,
							  cudnnConvolutionDescriptor_t cv, cudnnTensorDescriptor_t dxd, void* dx, int want, int* got, fake_perf* perf, void* ws, size_t wsBytes) {
	std::lock_guard<std::mutex> l(fake_mu);
	return fake_find_algos(h, 1, dxd, wd, cv, dyd, (float*)dx, (float*)w, (float*)dy, want, got, perf, ws, wsBytes);
}

cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithmEx(cudnnHandle_t h, cudnnTensorDescriptor_t xd, const void* x, cudnnTensorDescriptor_t dyd, const void* dy,
							    cudnnConvolutionDescriptor_t cv, cudnnFilterDescriptor_t dwd, void* dw, int want, int* got, fake_perf* perf, void* ws, size_t wsBytes) {
	std::lock_guard<std::mutex> l(fake_mu);
	return fake_find_algos(h, 2, xd, dwd, cv, dyd, (float*)x, (float*)dw, (float*)dy, want, got, perf, ws, wsBytes);
}

} // extern "C"
