// A fake CUDA driver, cuBLAS and cuDNN (its legacy convolutions and its
// graph API) — the subset of their C APIs that package cuda calls, with
// the prototypes and numbers of cuda.h, cublas_api.h, cudnn_cnn.h and
// cudnn_graph.h (cuDNN 9) — running on
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
//   - stream capture in global or thread-local mode: an allocation, a
//     free, a synchronous copy, a launch on the legacy stream or a
//     synchronisation while a capture runs — in global mode any, in
//     thread-local mode one the calling thread began — fails and
//     invalidates the capture; a captured launch
//     keeps its parameters' values as they were when it was recorded;
//   - modules must be CUBIN (ELF for EM_CUDA) or NUL-terminated PTX naming
//     the kernel; block and grid sizes within the hardware's limits;
//   - cuBLAS's leading dimensions and column-major operands (beta = 0
//     never reads C); the handle's stream;
//   - cuDNN's workspaces and math types, and its graph API's descriptors,
//     attributes, plans and variant packs (see its section below);
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
#include <thread>

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
	CUDA_ERROR_NO_BINARY_FOR_GPU = 209,
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
	int mode = 0;               // the capture's: 0 global, 1 thread-local
	std::thread::id captureBy;  // the thread that began it
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

// fake_cc is the devices' compute capability, major×10 + minor
// (fake_set_cc): 8.0 unless a test says otherwise.
static int fake_cc = 80;

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

// fake_capture_running is the stream whose capture forbids the calling
// thread's unsafe calls — one in global mode in any context, or one in
// thread-local mode this thread began — or null.
static fake_stream* fake_capture_running() {
	for (auto* c : fake_ctxs)
		for (auto* s : c->streams)
			if (s->capturing && (s->mode == 0 || s->captureBy == std::this_thread::get_id())) return s;
	return nullptr;
}

// fake_unsafe fails a call that a running capture forbids, and invalidates
// that capture.
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
	case 75: *v = fake_cc / 10; return CUDA_SUCCESS; // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
	case 76: *v = fake_cc % 10; return CUDA_SUCCESS; // …_MINOR
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
		// A driver compiles PTX for its GPU's architecture or an older one.
		size_t t = img.find(".target sm_");
		if (t == std::string::npos || atoi(img.c_str() + t + 11) > fake_cc) return CUDA_ERROR_NO_BINARY_FOR_GPU;
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
	if (mode != 0 && mode != 1) return CUDA_ERROR_INVALID_VALUE; // global and thread-local are emulated, not relaxed
	if (s->capturing) return CUDA_ERROR_ILLEGAL_STATE;
	s->capturing = true;
	s->mode = mode;
	s->captureBy = std::this_thread::get_id();
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

// fake_set_cc makes the devices' compute capability major.minor (cc =
// major×10 + minor).
void fake_set_cc(int cc) {
	std::lock_guard<std::mutex> l(fake_mu);
	fake_cc = cc;
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
	case 2002: return "CUDNN_STATUS_BAD_PARAM_NULL_POINTER";
	case 2003: return "CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER";
	case 2004: return "CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED";
	case 2005: return "CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND";
	case 2008: return "CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH";
	case 2009: return "CUDNN_STATUS_BAD_PARAM_DUPLICATED_ENTRIES";
	case 2010: return "CUDNN_STATUS_BAD_PARAM_ATTRIBUTE_TYPE";
	case 3001: return "CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN";
	case 3002: return "CUDNN_STATUS_NOT_SUPPORTED_SHAPE";
	case 3003: return "CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE";
	case 3004: return "CUDNN_STATUS_NOT_SUPPORTED_LAYOUT";
	case 3011: return "CUDNN_STATUS_NOT_SUPPORTED_PADDING";
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

// fake_geometry checks that the descriptors x, w, conv and y describe one
// convolution.
static cudnnStatus_t fake_geometry_of(fake_tensor* x, fake_filter* w, fake_conv* cv, fake_tensor* y);
static cudnnStatus_t fake_geometry(fake_tensor* x, fake_filter* w, fake_conv* cv, fake_tensor* y) {
	for (void* p : {(void*)x, (void*)w, (void*)cv, (void*)y})
		if (!fake_descs.count(p)) return CUDNN_STATUS_BAD_PARAM;
	if (!x->set || !w->set || !cv->set || !y->set) return CUDNN_STATUS_BAD_PARAM;
	return fake_geometry_of(x, w, cv, y);
}

// fake_geometry_of checks that x, w, conv and y's shapes make one
// convolution.
static cudnnStatus_t fake_geometry_of(fake_tensor* x, fake_filter* w, fake_conv* cv, fake_tensor* y) {
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


// ---- cuDNN's graph (backend) API (cudnn_graph.h), for cudnn_graph.go ----
// Descriptors of the kinds a convolution's plan needs. Each attribute is
// checked for its descriptor's kind, its type and its count; Finalize
// checks that the required ones are there and agree (a convolution's
// shapes, unique tensor ids); a finalized descriptor takes no more
// attributes, and only a finalized one is read or referred to. The
// heuristics (mode A) offer, per direction, engines with each numerical
// note the caller must filter out (tensor cores, down-converting,
// reduced-precision sums, nondeterministic), one that no plan supports,
// one wanting more than 1 GiB of workspace, and exact ones — except for
// the filter gradient, whose exact engine only the fallback list has. A
// result count is all there are, also where fewer were asked for. A plan
// keeps what it runs, so its descriptors may go before it. Execute finds
// every tensor's pointer in the variant pack by its id, checks its
// alignment, and runs the convolution (fake_convolve) on the handle's
// stream — recorded where that stream captures, but never a plan's first
// run, which may do one-time work (load kernels, take memory).

typedef fake_dnn* fake_dnn_handle;
enum { // cuDNN 9's finer statuses
	CUDNN_STATUS_BAD_PARAM_NULL_POINTER = 2002,
	CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER = 2003,
	CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED = 2004,
	CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND = 2005,
	CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH = 2008,
	CUDNN_STATUS_BAD_PARAM_DUPLICATED_ENTRIES = 2009,
	CUDNN_STATUS_BAD_PARAM_ATTRIBUTE_TYPE = 2010,
	CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN = 3001,
	CUDNN_STATUS_NOT_SUPPORTED_SHAPE = 3002,
	CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE = 3003,
	CUDNN_STATUS_NOT_SUPPORTED_LAYOUT = 3004,
	CUDNN_STATUS_NOT_SUPPORTED_PADDING = 3011,
};
enum { // cudnnBackendDescriptorType_t
	FB_CONVOLUTION = 1, FB_ENGINE = 2, FB_ENGINECFG = 3, FB_ENGINEHEUR = 4, FB_PLAN = 5,
	FB_OP_FWD = 10, FB_OP_FILTER = 11, FB_OP_DATA = 12, FB_OPGRAPH = 15, FB_PACK = 16, FB_TENSOR = 17,
};
enum { // cudnnBackendAttributeType_t
	FT_HANDLE = 0, FT_DATA_TYPE = 1, FT_BOOLEAN = 2, FT_INT64 = 3, FT_FLOAT = 4, FT_DOUBLE = 5, FT_VOID_PTR = 6,
	FT_CONV_MODE = 7, FT_HEUR_MODE = 8, FT_NUMERICAL_NOTE = 11, FT_DESCRIPTOR = 15,
	FT_FLOATING = -1, // FLOAT or DOUBLE (α, β)
};

// fake_graph_op is what a plan runs: one convolution direction.
struct fake_graph_op {
	int dir = 0;                // 0 forward, 1 data, 2 filter
	fake_tensor x, y;           // x (dx), y (dy)
	fake_filter w;              // w (dw)
	fake_conv cv;
	int64_t uid[3] = {};        // x, w, y
	int64_t align[3] = {};
	double alpha = 1, beta = 0;
};

// fake_engine is one engine of the heuristics.
struct fake_engine {
	int64_t index;
	std::vector<int> notes;
	size_t ws;
	int status; // at the plan's Finalize
	bool tensor;
};

struct fake_attr {
	int type = 0;
	std::vector<int64_t> i;   // integers and enumerations
	std::vector<double> f;    // FLOAT, DOUBLE
	std::vector<void*> p;     // pointers, handles, descriptors
};

struct fake_bd {
	int kind;
	bool final = false;
	std::map<int, fake_attr> attrs;
	fake_graph_op op;       // operations, graphs, heuristics, configs, engines, plans
	fake_engine eng{};      // configs, engines, plans
	bool hasEng = false;
	fake_dnn* handle = nullptr; // graphs, plans
	int mode = 0;               // heuristics
	bool ran = false;           // plans: run once (outside a capture)
};
static std::set<fake_bd*> fake_bds;
static thread_local std::string fake_dnn_why; // cudnnGetLastErrorString's text
static long fake_dnn_exec_fails = 0;          // the next executes to fail (fake_fail_graph_runs)
static long fake_heur_shortfall = 0;          // engines the count query leaves out (fake_short_heuristics_count)
static long fake_graph_packed_mask = 0;       // directions whose heuristics take NCHW-packed tensors only (fake_graph_packed_only)

static cudnnStatus_t fake_dnn_fail(cudnnStatus_t r, const std::string& why) {
	fake_dnn_why = why;
	return r;
}

// The engines per direction in the order of heuristics mode mode: mode
// A's (and the other modes') list has no exact engine for the filter
// gradient, which only the fallback list (mode 2) has; mode -1: all.
static std::vector<fake_engine> fake_engines(int dir, int mode) {
	int64_t base = 100 * (dir + 1);
	std::vector<fake_engine> all = {
		{base + 0, {0}, 8192, 0, true},                       // tensor cores: TF32 only
		{base + 1, {4}, 0, 0, false},                         // nondeterministic
		{base + 2, {1, 0}, 0, 0, true},                       // down-converts its inputs
		{base + 3, {2}, 0, 0, false},                         // reduced-precision sums
		{base + 4, {}, 0, CUDNN_STATUS_NOT_SUPPORTED_SHAPE, false}, // no plan for these shapes
		{base + 5, {5}, (size_t)3 << 30, 0, false},           // Winograd, too much workspace
		{base + 6, {3}, 65536, 0, false},                     // FFT: exact
		{base + 7, {}, 0, 0, false},                          // exact, no workspace
	};
	if (mode == 2) return {all[0], all[7]};
	if (mode >= 0 && dir == 2) all.resize(6);
	return all;
}

// fake_rule is an attribute a kind of descriptor takes: its type and
// count, and whether Finalize needs it; get-only ones are the
// descriptor's results.
struct fake_rule {
	int kind, name, type, minN, maxN;
	bool required, getOnly;
};
static const fake_rule fake_rules[] = {
	{FB_TENSOR, 900, FT_INT64, 1, 1, true, false}, // byte alignment
	{FB_TENSOR, 901, FT_DATA_TYPE, 1, 1, true, false},
	{FB_TENSOR, 902, FT_INT64, 1, 8, true, false},  // dimensions
	{FB_TENSOR, 903, FT_INT64, 1, 8, true, false},  // strides
	{FB_TENSOR, 906, FT_INT64, 1, 1, true, false},  // unique id
	{FB_TENSOR, 907, FT_BOOLEAN, 1, 1, false, false}, // virtual
	{FB_CONVOLUTION, 100, FT_DATA_TYPE, 1, 1, true, false},
	{FB_CONVOLUTION, 101, FT_CONV_MODE, 1, 1, true, false},
	{FB_CONVOLUTION, 102, FT_INT64, 1, 3, true, false}, // dilations
	{FB_CONVOLUTION, 103, FT_INT64, 1, 3, true, false}, // strides
	{FB_CONVOLUTION, 104, FT_INT64, 1, 3, true, false}, // post-paddings
	{FB_CONVOLUTION, 105, FT_INT64, 1, 3, true, false}, // pre-paddings
	{FB_CONVOLUTION, 106, FT_INT64, 1, 1, true, false}, // spatial dimensions
	{FB_OP_FWD, 700, FT_FLOATING, 1, 1, true, false}, {FB_OP_FWD, 701, FT_FLOATING, 1, 1, true, false},
	{FB_OP_FWD, 702, FT_DESCRIPTOR, 1, 1, true, false}, {FB_OP_FWD, 703, FT_DESCRIPTOR, 1, 1, true, false},
	{FB_OP_FWD, 704, FT_DESCRIPTOR, 1, 1, true, false}, {FB_OP_FWD, 705, FT_DESCRIPTOR, 1, 1, true, false},
	{FB_OP_DATA, 706, FT_FLOATING, 1, 1, true, false}, {FB_OP_DATA, 707, FT_FLOATING, 1, 1, true, false},
	{FB_OP_DATA, 708, FT_DESCRIPTOR, 1, 1, true, false}, {FB_OP_DATA, 709, FT_DESCRIPTOR, 1, 1, true, false},
	{FB_OP_DATA, 710, FT_DESCRIPTOR, 1, 1, true, false}, {FB_OP_DATA, 711, FT_DESCRIPTOR, 1, 1, true, false},
	{FB_OP_FILTER, 712, FT_FLOATING, 1, 1, true, false}, {FB_OP_FILTER, 713, FT_FLOATING, 1, 1, true, false},
	{FB_OP_FILTER, 714, FT_DESCRIPTOR, 1, 1, true, false}, {FB_OP_FILTER, 715, FT_DESCRIPTOR, 1, 1, true, false},
	{FB_OP_FILTER, 716, FT_DESCRIPTOR, 1, 1, true, false}, {FB_OP_FILTER, 717, FT_DESCRIPTOR, 1, 1, true, false},
	{FB_OPGRAPH, 800, FT_HANDLE, 1, 1, true, false},
	{FB_OPGRAPH, 801, FT_DESCRIPTOR, 1, 64, true, false},
	{FB_ENGINEHEUR, 200, FT_HEUR_MODE, 1, 1, true, false},
	{FB_ENGINEHEUR, 201, FT_DESCRIPTOR, 1, 1, true, false},
	{FB_ENGINEHEUR, 202, FT_DESCRIPTOR, 0, 0, false, true}, // results
	{FB_ENGINECFG, 300, FT_DESCRIPTOR, 1, 1, true, false},
	{FB_ENGINE, 1300, FT_DESCRIPTOR, 1, 1, true, false}, // operation graph
	{FB_ENGINE, 1301, FT_INT64, 1, 1, true, false},      // global index
	{FB_ENGINE, 1303, FT_NUMERICAL_NOTE, 0, 0, false, true},
	{FB_PLAN, 400, FT_HANDLE, 1, 1, true, false},
	{FB_PLAN, 401, FT_DESCRIPTOR, 1, 1, true, false},
	{FB_PLAN, 402, FT_INT64, 0, 0, false, true}, // workspace size
	{FB_PACK, 1000, FT_INT64, 1, 64, true, false},
	{FB_PACK, 1001, FT_VOID_PTR, 1, 64, true, false},
	{FB_PACK, 1003, FT_VOID_PTR, 1, 1, true, false}, // workspace (null where the plan needs none)
};

static const fake_rule* fake_rule_of(int kind, int name) {
	for (auto& r : fake_rules)
		if (r.kind == kind && r.name == name) return &r;
	return nullptr;
}

static bool fake_kind_ok(int kind) {
	switch (kind) {
	case FB_CONVOLUTION: case FB_ENGINE: case FB_ENGINECFG: case FB_ENGINEHEUR: case FB_PLAN:
	case FB_OP_FWD: case FB_OP_FILTER: case FB_OP_DATA: case FB_OPGRAPH: case FB_PACK: case FB_TENSOR:
		return true;
	}
	return false;
}

static size_t fake_type_size(int t) {
	switch (t) {
	case FT_INT64: case FT_DOUBLE: return 8;
	case FT_HANDLE: case FT_VOID_PTR: case FT_DESCRIPTOR: return sizeof(void*);
	case FT_BOOLEAN: return sizeof(bool);
	default: return 4; // FLOAT and the enumerations
	}
}

typedef fake_bd* cudnnBackendDescriptor_t;

cudnnStatus_t cudnnBackendCreateDescriptor(int kind, cudnnBackendDescriptor_t* d) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (!d) return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM_NULL_POINTER, "cudnnBackendCreateDescriptor: null descriptor pointer");
	if (!fake_kind_ok(kind)) return fake_dnn_fail(CUDNN_STATUS_NOT_SUPPORTED, "cudnnBackendCreateDescriptor: a kind of descriptor the fake has not");
	if (!fake_take()) return fake_dnn_fail(CUDNN_STATUS_ALLOC_FAILED, "cudnnBackendCreateDescriptor: out of host memory");
	*d = new fake_bd{kind};
	fake_bds.insert(*d);
	return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnBackendDestroyDescriptor(cudnnBackendDescriptor_t d) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (!fake_bds.erase(d)) return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM, "cudnnBackendDestroyDescriptor: not a live descriptor");
	delete d;
	return CUDNN_STATUS_SUCCESS;
}

// fake_ref is the finalized descriptor of kind kind that an attribute's
// value names, or null with *r set.
static fake_bd* fake_ref(void* p, int kind, cudnnStatus_t* r, const char* what) {
	fake_bd* d = (fake_bd*)p;
	if (!d || !fake_bds.count(d)) {
		*r = fake_dnn_fail(CUDNN_STATUS_BAD_PARAM, std::string(what) + ": not a live descriptor");
		return nullptr;
	}
	if (d->kind != kind) {
		*r = fake_dnn_fail(CUDNN_STATUS_BAD_PARAM, std::string(what) + ": a descriptor of kind " + std::to_string(d->kind) + ", not " + std::to_string(kind));
		return nullptr;
	}
	if (!d->final) {
		*r = fake_dnn_fail(CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED, std::string(what) + ": the descriptor is not finalized");
		return nullptr;
	}
	return d;
}

cudnnStatus_t cudnnBackendSetAttribute(cudnnBackendDescriptor_t d, int name, int type, int64_t n, const void* values) {
	std::lock_guard<std::mutex> l(fake_mu);
	std::string at = "cudnnBackendSetAttribute(" + std::to_string(name) + ")";
	if (!fake_bds.count(d)) return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM, at + ": not a live descriptor");
	if (d->final) return fake_dnn_fail(CUDNN_STATUS_NOT_INITIALIZED, at + ": the descriptor is finalized");
	const fake_rule* rule = fake_rule_of(d->kind, name);
	if (!rule || rule->getOnly) return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM, at + ": not an attribute this kind of descriptor takes");
	if (rule->type == FT_FLOATING ? type != FT_FLOAT && type != FT_DOUBLE : type != rule->type)
		return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM_ATTRIBUTE_TYPE, at + ": type " + std::to_string(type) + ", want " + std::to_string(rule->type));
	if (n < rule->minN || n > rule->maxN) return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM, at + ": " + std::to_string(n) + " elements");
	if (!values) return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM_NULL_POINTER, at + ": null values");
	fake_attr a;
	a.type = type;
	for (int64_t k = 0; k < n; k++) {
		const char* v = (const char*)values + k * fake_type_size(type);
		switch (type) {
		case FT_INT64: a.i.push_back(*(const int64_t*)v); break;
		case FT_FLOAT: a.f.push_back(*(const float*)v); break;
		case FT_DOUBLE: a.f.push_back(*(const double*)v); break;
		case FT_BOOLEAN: a.i.push_back(*(const bool*)v); break;
		case FT_HANDLE: case FT_VOID_PTR: case FT_DESCRIPTOR: a.p.push_back(*(void* const*)v); break;
		default: a.i.push_back(*(const int32_t*)v);
		}
	}
	if (type == FT_DESCRIPTOR)
		for (void* p : a.p)
			if (!fake_bds.count((fake_bd*)p)) return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM, at + ": names no live descriptor");
	if (type == FT_HANDLE && !fake_dnns.count((fake_dnn*)a.p[0])) return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM, at + ": not a cuDNN handle");
	d->attrs[name] = a;
	return CUDNN_STATUS_SUCCESS;
}

// fake_tensor_of reads a finalized 4-d tensor descriptor.
static cudnnStatus_t fake_tensor_of(void* p, fake_tensor* t, int64_t* uid, int64_t* align, const char* what) {
	cudnnStatus_t r = 0;
	fake_bd* d = fake_ref(p, FB_TENSOR, &r, what);
	if (!d) return r;
	auto& dims = d->attrs[902].i;
	auto& st = d->attrs[903].i;
	if (dims.size() != 4) return fake_dnn_fail(CUDNN_STATUS_NOT_SUPPORTED_SHAPE, std::string(what) + ": the fake convolves 4-d tensors only");
	*t = fake_tensor{true, (int)dims[0], (int)dims[1], (int)dims[2], (int)dims[3], (int)st[0], (int)st[1], (int)st[2], (int)st[3]};
	*uid = d->attrs[906].i[0];
	*align = d->attrs[900].i[0];
	return 0;
}

// fake_finalize_op reads a convolution operation's descriptors and checks
// that their shapes make one convolution.
static cudnnStatus_t fake_finalize_op(fake_bd* d) {
	int dir = d->kind == FB_OP_FWD ? 0 : d->kind == FB_OP_DATA ? 1 : 2;
	int first = dir == 0 ? 700 : dir == 1 ? 706 : 712;
	fake_graph_op& op = d->op;
	op.dir = dir;
	op.alpha = d->attrs[first].f[0];
	op.beta = d->attrs[first + 1].f[0];
	cudnnStatus_t r = 0;
	fake_bd* cv = fake_ref(d->attrs[first + 2].p[0], FB_CONVOLUTION, &r, "the operation's convolution");
	if (!cv) return r;
	if (cv->attrs[106].i[0] != 2) return fake_dnn_fail(CUDNN_STATUS_NOT_SUPPORTED_SHAPE, "the fake convolves in 2 spatial dimensions only");
	if (cv->attrs[100].i[0] != 0) return fake_dnn_fail(CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE, "the fake computes in float only");
	auto& pre = cv->attrs[105].i;
	auto& post = cv->attrs[104].i;
	auto& str = cv->attrs[103].i;
	auto& dil = cv->attrs[102].i;
	if (pre != post) return fake_dnn_fail(CUDNN_STATUS_NOT_SUPPORTED_PADDING, "the fake pads symmetrically only");
	op.cv = fake_conv{true, (int)pre[0], (int)pre[1], (int)str[0], (int)str[1], (int)dil[0], (int)dil[1], (int)cv->attrs[101].i[0], 3};
	// The three tensors, in the header's order: forward W, X, Y; data W, DX, DY; filter DW, X, DY.
	fake_tensor wt;
	if ((r = fake_tensor_of(d->attrs[first + 3].p[0], &wt, &op.uid[1], &op.align[1], "the operation's filter"))) return r;
	if ((r = fake_tensor_of(d->attrs[first + 4].p[0], &op.x, &op.uid[0], &op.align[0], "the operation's x"))) return r;
	if ((r = fake_tensor_of(d->attrs[first + 5].p[0], &op.y, &op.uid[2], &op.align[2], "the operation's y"))) return r;
	if (wt.cs != wt.h * wt.w || wt.ns != wt.c * wt.h * wt.w || wt.hs != wt.w || wt.ws != 1)
		return fake_dnn_fail(CUDNN_STATUS_NOT_SUPPORTED_LAYOUT, "the fake takes packed KCRS filters only");
	op.w = fake_filter{true, wt.n, wt.c, wt.h, wt.w};
	fake_tensor x = op.x, y = op.y;
	fake_filter w = op.w;
	fake_conv c = op.cv;
	if (fake_geometry_of(&x, &w, &c, &y)) return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH, "the operation's tensors do not make one convolution");
	return 0;
}

cudnnStatus_t cudnnBackendFinalize(cudnnBackendDescriptor_t d) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (!fake_bds.count(d)) return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM, "cudnnBackendFinalize: not a live descriptor");
	if (d->final) return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM, "cudnnBackendFinalize: finalized already");
	std::string at = "cudnnBackendFinalize(kind " + std::to_string(d->kind) + ")";
	for (auto& rule : fake_rules)
		if (rule.kind == d->kind && rule.required && !d->attrs.count(rule.name))
			return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM, at + ": attribute " + std::to_string(rule.name) + " is not set");
	cudnnStatus_t r = 0;
	switch (d->kind) {
	case FB_TENSOR: {
		auto& dims = d->attrs[902].i;
		auto& st = d->attrs[903].i;
		int64_t align = d->attrs[900].i[0];
		if (dims.size() != st.size()) return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM, at + ": dimensions and strides differ in number");
		for (size_t k = 0; k < dims.size(); k++)
			if (dims[k] < 1 || st[k] < 1) return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM, at + ": a dimension or stride below 1");
		if (align < 1 || (align & (align - 1))) return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM, at + ": the byte alignment is not a power of 2");
		if (d->attrs[901].i[0] != 0) return fake_dnn_fail(CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE, at + ": the fake has float tensors only");
		break;
	}
	case FB_CONVOLUTION: {
		size_t n = (size_t)d->attrs[106].i[0];
		for (int a : {102, 103, 104, 105})
			if (d->attrs[a].i.size() != n) return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM, at + ": attribute " + std::to_string(a) + " has not the spatial dimensions' count");
		int mode = (int)d->attrs[101].i[0];
		if (mode != 0 && mode != 1) return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM, at + ": no such convolution mode");
		for (int a : {102, 103})
			for (int64_t v : d->attrs[a].i)
				if (v < 1) return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM, at + ": a dilation or stride below 1");
		for (int a : {104, 105})
			for (int64_t v : d->attrs[a].i)
				if (v < 0) return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM, at + ": a negative padding");
		break;
	}
	case FB_OP_FWD: case FB_OP_DATA: case FB_OP_FILTER:
		if ((r = fake_finalize_op(d))) return r;
		break;
	case FB_OPGRAPH: {
		auto& ops = d->attrs[801].p;
		if (ops.size() != 1) return fake_dnn_fail(CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN, at + ": the fake runs graphs of one convolution");
		fake_bd* op = (fake_bd*)ops[0];
		if (!fake_bds.count(op) || (op->kind != FB_OP_FWD && op->kind != FB_OP_DATA && op->kind != FB_OP_FILTER))
			return fake_dnn_fail(CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN, at + ": the operation is not a convolution");
		if (!op->final) return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED, at + ": the operation is not finalized");
		if (op->op.uid[0] == op->op.uid[1] || op->op.uid[0] == op->op.uid[2] || op->op.uid[1] == op->op.uid[2])
			return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM_DUPLICATED_ENTRIES, at + ": two tensors share a unique id");
		d->op = op->op;
		d->handle = (fake_dnn*)d->attrs[800].p[0];
		break;
	}
	case FB_ENGINEHEUR: {
		fake_bd* g = fake_ref(d->attrs[201].p[0], FB_OPGRAPH, &r, at.c_str());
		if (!g) return r;
		int64_t mode = d->attrs[200].i[0];
		if (mode < 0 || mode > 3) return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM, at + ": no such heuristics mode");
		if (fake_graph_packed_mask & (1L << g->op.dir)) {
			auto packed = [](const fake_tensor& t) { return t.ws == 1 && t.hs == t.w && t.cs == t.h * t.w && t.ns == t.c * t.h * t.w; };
			if (!packed(g->op.x) || !packed(g->op.y))
				return fake_dnn_fail(CUDNN_STATUS_NOT_SUPPORTED, at + ": no engine for these strides (fake_graph_packed_only)");
		}
		d->op = g->op;
		d->handle = g->handle;
		d->mode = (int)mode;
		break;
	}
	case FB_ENGINE: {
		fake_bd* g = fake_ref(d->attrs[1300].p[0], FB_OPGRAPH, &r, at.c_str());
		if (!g) return r;
		bool found = false;
		for (auto& e : fake_engines(g->op.dir, -1))
			if (e.index == d->attrs[1301].i[0]) d->eng = e, found = true;
		if (!found) return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND, at + ": no engine of that index for this graph");
		d->op = g->op;
		d->handle = g->handle;
		d->hasEng = true;
		break;
	}
	case FB_ENGINECFG: {
		fake_bd* e = fake_ref(d->attrs[300].p[0], FB_ENGINE, &r, at.c_str());
		if (!e) return r;
		d->op = e->op, d->eng = e->eng, d->handle = e->handle, d->hasEng = true;
		break;
	}
	case FB_PLAN: {
		fake_bd* cfg = fake_ref(d->attrs[401].p[0], FB_ENGINECFG, &r, at.c_str());
		if (!cfg) return r;
		if (!cfg->hasEng) return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM, at + ": the configuration has no engine");
		if (cfg->eng.status) return fake_dnn_fail(cfg->eng.status, at + ": engine " + std::to_string(cfg->eng.index) + " does not support this convolution");
		if (fake_unsafe("cudnnBackendFinalize(an execution plan)", 1)) return fake_dnn_fail(CUDNN_STATUS_NOT_SUPPORTED, at + ": planning (which compiles and loads kernels) while a stream captures");
		if (!fake_take()) return fake_dnn_fail(CUDNN_STATUS_ALLOC_FAILED, at + ": out of memory");
		d->op = cfg->op, d->eng = cfg->eng, d->hasEng = true;
		d->handle = (fake_dnn*)d->attrs[400].p[0];
		break;
	}
	case FB_PACK: {
		if (d->attrs[1000].i.size() != d->attrs[1001].p.size()) return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM, at + ": unique ids and data pointers differ in number");
		std::set<int64_t> seen(d->attrs[1000].i.begin(), d->attrs[1000].i.end());
		if (seen.size() != d->attrs[1000].i.size()) return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM_DUPLICATED_ENTRIES, at + ": a unique id twice");
		break;
	}
	}
	d->final = true;
	return CUDNN_STATUS_SUCCESS;
}

// cudnnBackendGetAttribute reads a finalized descriptor's results: the
// heuristics' engines go into configuration descriptors the caller made
// (each finalized, as cuDNN returns them), a configuration's engine into
// an engine descriptor the caller made.
cudnnStatus_t cudnnBackendGetAttribute(cudnnBackendDescriptor_t d, int name, int type, int64_t want, int64_t* got, void* values) {
	std::lock_guard<std::mutex> l(fake_mu);
	std::string at = "cudnnBackendGetAttribute(" + std::to_string(name) + ")";
	if (!fake_bds.count(d)) return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM, at + ": not a live descriptor");
	if (!d->final) return fake_dnn_fail(CUDNN_STATUS_NOT_INITIALIZED, at + ": the descriptor is not finalized");
	const fake_rule* rule = fake_rule_of(d->kind, name);
	if (!rule) return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM, at + ": not an attribute of this kind of descriptor");
	if (rule->type == FT_FLOATING ? type != FT_FLOAT && type != FT_DOUBLE : type != rule->type)
		return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM_ATTRIBUTE_TYPE, at + ": type " + std::to_string(type) + ", want " + std::to_string(rule->type));
	if (!got) return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM_NULL_POINTER, at + ": null element count");
	if (want < 0 || (want > 0 && !values)) return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM, at + ": no room for the values");
	switch (d->kind * 10000 + name) {
	case FB_ENGINEHEUR * 10000 + 202: { // the results: configurations made by the caller
		auto engines = fake_engines(d->op.dir, d->mode);
		int64_t n = std::min<int64_t>(want, (int64_t)engines.size());
		for (int64_t k = 0; k < n; k++) {
			fake_bd* c = ((fake_bd**)values)[k];
			if (!fake_bds.count(c) || c->kind != FB_ENGINECFG) return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM, at + ": a result slot is not an engine configuration descriptor");
			if (c->final) return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM, at + ": a result slot is finalized already");
		}
		for (int64_t k = 0; k < n; k++) {
			fake_bd* c = ((fake_bd**)values)[k];
			c->op = d->op, c->eng = engines[k], c->handle = d->handle, c->hasEng = true, c->final = true;
		}
		*got = (int64_t)engines.size(); // all it has, also where fewer were asked for
		if (want == 0) *got = std::max<int64_t>(0, *got - fake_heur_shortfall);
		return CUDNN_STATUS_SUCCESS;
	}
	case FB_ENGINECFG * 10000 + 300: { // its engine, into the caller's engine descriptor
		if (want < 1) {
			*got = 1;
			return CUDNN_STATUS_SUCCESS;
		}
		fake_bd* e = ((fake_bd**)values)[0];
		if (!fake_bds.count(e) || e->kind != FB_ENGINE) return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM, at + ": not an engine descriptor");
		if (e->final) return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM, at + ": the engine descriptor is finalized already");
		e->op = d->op, e->eng = d->eng, e->handle = d->handle, e->hasEng = true, e->final = true;
		*got = 1;
		return CUDNN_STATUS_SUCCESS;
	}
	case FB_ENGINE * 10000 + 1301:
		if (want >= 1) *(int64_t*)values = d->eng.index;
		*got = 1;
		return CUDNN_STATUS_SUCCESS;
	case FB_ENGINE * 10000 + 1303: {
		int64_t n = std::min<int64_t>(want, (int64_t)d->eng.notes.size());
		for (int64_t k = 0; k < n; k++) ((int32_t*)values)[k] = d->eng.notes[k];
		*got = (int64_t)d->eng.notes.size();
		return CUDNN_STATUS_SUCCESS;
	}
	case FB_PLAN * 10000 + 402:
		if (want >= 1) *(int64_t*)values = (int64_t)d->eng.ws;
		*got = 1;
		return CUDNN_STATUS_SUCCESS;
	}
	return fake_dnn_fail(CUDNN_STATUS_NOT_SUPPORTED, at + ": the fake does not report this attribute");
}

// cudnnBackendExecute runs plan's convolution on the tensors pack names.
cudnnStatus_t cudnnBackendExecute(cudnnHandle_t h, cudnnBackendDescriptor_t plan, cudnnBackendDescriptor_t pack) {
	std::lock_guard<std::mutex> l(fake_mu);
	if (cudnnStatus_t r = fake_dnn_ok(h)) return fake_dnn_fail(r, "cudnnBackendExecute: the handle is not of the current, healthy context");
	cudnnStatus_t r = 0;
	fake_bd* p = fake_ref(plan, FB_PLAN, &r, "cudnnBackendExecute's plan");
	if (!p) return CUDNN_STATUS_BAD_PARAM;
	fake_bd* v = fake_ref(pack, FB_PACK, &r, "cudnnBackendExecute's variant pack");
	if (!v) return CUDNN_STATUS_BAD_PARAM;
	if (p->handle != h) return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM, "cudnnBackendExecute: the plan was made for another handle");
	const fake_graph_op& op = p->op;
	char* ptr[3];
	for (int k = 0; k < 3; k++) {
		auto& uids = v->attrs[1000].i;
		auto it = std::find(uids.begin(), uids.end(), op.uid[k]);
		if (it == uids.end()) return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM, "cudnnBackendExecute: the variant pack has no pointer for tensor " + std::to_string(op.uid[k]));
		ptr[k] = (char*)v->attrs[1001].p[it - uids.begin()];
		if (!ptr[k]) return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM_NULL_POINTER, "cudnnBackendExecute: tensor " + std::to_string(op.uid[k]) + "'s pointer is null");
		if ((uintptr_t)ptr[k] % (uintptr_t)op.align[k])
			return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER, "cudnnBackendExecute: tensor " + std::to_string(op.uid[k]) + "'s pointer is not aligned as its descriptor says");
	}
	void* ws = v->attrs.count(1003) ? v->attrs[1003].p[0] : nullptr;
	size_t need = p->eng.ws;
	if (need > 0 && !ws) return fake_dnn_fail(CUDNN_STATUS_BAD_PARAM_NULL_POINTER, "cudnnBackendExecute: the plan needs a workspace and the pack has none");
	if (fake_dnn_exec_fails > 0) {
		fake_dnn_exec_fails--;
		return fake_dnn_fail(CUDNN_STATUS_EXECUTION_FAILED, "cudnnBackendExecute: failed as the test asked (fake_fail_graph_runs)");
	}
	// A plan's first run may do one-time work (load kernels, take memory)
	// that a capture forbids: run it once outside any capture first.
	if (!p->ran && fake_capture_running()) {
		fake_unsafe("cudnnBackendExecute's first run of a plan (its one-time work)", 1);
		return fake_dnn_fail(CUDNN_STATUS_NOT_SUPPORTED, "cudnnBackendExecute: a plan's first run inside a stream capture");
	}
	fake_ctx* c = fake_cur;
	fake_graph_op o = op;
	o.cv.math = p->eng.tensor ? 1 : 3;
	float al = (float)o.alpha, be = (float)o.beta;
	CUresult cr = fake_run(h->stream, "cuDNN's cudnnBackendExecute on the legacy stream", [=]() -> CUresult {
		return fake_convolve(c, o.dir, o.x, o.w, o.cv, o.y, (float*)ptr[0], (float*)ptr[1], (float*)ptr[2], al, be, (float*)ws, need, need) ? CUDA_ERROR_ILLEGAL_ADDRESS : CUDA_SUCCESS;
	});
	if (cr != CUDA_SUCCESS) return fake_dnn_fail(CUDNN_STATUS_EXECUTION_FAILED, "cudnnBackendExecute: the convolution failed (" + c->why + ")");
	p->ran = true;
	return CUDNN_STATUS_SUCCESS;
}

// fake_fail_graph_runs makes the next n executes of graph-API plans fail.
void fake_fail_graph_runs(long n) {
	std::lock_guard<std::mutex> l(fake_mu);
	fake_dnn_exec_fails = n;
}

// fake_short_heuristics_count makes the heuristics' count query (no room
// for results) report n engines fewer than the query of the results then
// writes and reports: a count that changed between the two calls.
void fake_short_heuristics_count(long n) {
	std::lock_guard<std::mutex> l(fake_mu);
	fake_heur_shortfall = n;
}

// fake_graph_packed_only makes the graph API's heuristics refuse, for the
// directions in mask (1 forward, 2 data, 4 filter), tensors that are not
// packed NCHW: a cuDNN with no engine for our channel-major layout.
void fake_graph_packed_only(long mask) {
	std::lock_guard<std::mutex> l(fake_mu);
	fake_graph_packed_mask = mask;
}

void cudnnGetLastErrorString(char* msg, size_t n) {
	if (!msg || n == 0) return;
	snprintf(msg, n, "%s", fake_dnn_why.c_str());
	fake_dnn_why.clear();
}

// fake_dnn_descriptors is the number of cuDNN descriptors alive (the
// legacy API's and the graph API's), for the tests of their release.
long fake_dnn_descriptors() {
	std::lock_guard<std::mutex> l(fake_mu);
	return (long)(fake_descs.size() + fake_bds.size());
}

} // extern "C"
