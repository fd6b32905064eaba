/* _mtpump: an MTProto tunnel's per-chunk work in one native call, for CPython (runtime/cpython.py).

Why: profiled on the phones load model (bench/phones.py), the CPython relay spent ~20-26 us of
interpreter time per media chunk in proto/mtproto.py's Pipe (two cipher calls, the fake-TLS record
walk and framing, a dozen memoryview slices) and ~70 us per chat round trip remaking the
`cryptography` cipher contexts that idle tunnels had given back. Here a chunk is one call, and no
tunnel holds an OpenSSL context at all.

  CTR(key, iv)        AES-256-CTR as runtime.aes_ctr promises: .update(data) -> bytes,
                      .update_into(data, buf) -> n, the stream running on across calls. It keeps its
                      key, IV and position (72 bytes); every call positions ONE context shared by all
                      ciphers at that offset (key schedule and counter: well under a microsecond), so
                      55,000 idle tunnels hold no contexts (~1 KiB each) and nothing parks them.
  c_dec.pipe(c_enc, d_enc, d_dec, sizer, rbuf, error) -> Pipe
                      proto/mtproto.py's Pipe.converters() for the fast pump: sizer is the state of the
                      Pipe's faketls.RecordSizer (0: no fake-TLS), rbuf the start of a record it holds,
                      error the exception class a broken record raises (MTProtoError, with "tls").
  Pipe.up(data), Pipe.down(data) -> memoryview
                      client -> DC and DC -> client, byte for byte what Pipe.tls_up_into/tls_down_into
                      (or _ctr2_into without fake-TLS) return; the view lives in one buffer shared by all
                      pipes and is valid until the next call of either (the fast pump copies a tail).
  Way.relay(sfd, dfd, want) -> (n, tail)
                      a chunk read from sfd, converted and sent to dfd in one call.
  Table()             the fast pump's epoll dispatch for MTProto chunks (runtime/epoll.py's Poller):
                      .watch(fd, way, dfd, want, owner) says fd's reads are way's to relay to dfd;
                      .bind(epfd, maxevents, on_left) makes it the event loop's reader of that set:
                      table() waits for nothing, relays every chunk whose socket is only readable
                      and watched, and hands on_left the events it left (the others, and a relay's
                      EOF, error, tail or broken record) for Python to dispatch; the bytes it
                      moved are counted on the way (.take()) and .moved() lists the owners with bytes
                      not taken yet. Profiled, the Python dispatch of a chunk (the poller's loop, the
                      pump's callbacks, the tap's counters) cost more than the chunk's own syscalls.

The converters take no sockets and no clock: bytes in, bytes out, like the Python they replace (which stays the portable path,
MicroPython's and the fallback when this module is not built). tests/mtproto/test_native_pump.py runs
both on the same streams.
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#ifdef __linux__
#include <sys/epoll.h>
#endif

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* not Linux: the fast pump that calls relay() runs on Linux only anyway */
#endif

/* proto/faketls.py's constants (the equivalence test fails if they drift apart) */
#define REC_CCS 0x14
#define REC_APPDATA 0x17
#define TLS_MAX_IN (16384 + 2048) /* records we accept: TLS's ciphertext limit */
#define TLS_MAX_OUT 16384
#define JITTER_SPAN (TLS_MAX_OUT * 32 / 1000) /* RecordSizer: records vary by up to this below TLS_MAX_OUT */
#define WHOLE_MAX (TLS_MAX_OUT - JITTER_SPAN) /* a chunk up to this goes out as one record */

static EVP_CIPHER_CTX *g_ctx;    /* the one context: positioned anew for every call */
static const EVP_CIPHER *g_aes; /* fetched once: an implicit fetch per init costs more than the init */
static int g_ready;              /* g_ctx has had g_aes set (later inits pass only key and IV) */

/* -- CTR ------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    uint64_t pos; /* keystream bytes used so far */
    unsigned char key[32];
    unsigned char iv[16];
} CTRObject;

static PyTypeObject CTRType;

static int ssl_fail(void) {
    PyErr_SetString(PyExc_RuntimeError, "OpenSSL AES-256-CTR failed");
    return -1;
}

/* Point the shared context at c's position: counter block = IV + pos / 16, then pos % 16 into it. */
static int ctr_position(CTRObject *c) {
    unsigned char block[16];
    memcpy(block, c->iv, 16);
    uint64_t add = c->pos >> 4;
    for (int i = 15; i >= 0 && add; i--) { /* a 128-bit big-endian add, as OpenSSL's counter counts */
        unsigned s = block[i] + (unsigned)(add & 0xFF);
        block[i] = (unsigned char)s;
        add = (add >> 8) + (s >> 8);
    }
    if (!EVP_EncryptInit_ex(g_ctx, g_ready ? NULL : g_aes, NULL, c->key, block))
        return ssl_fail();
    g_ready = 1;
    int skip = (int)(c->pos & 15);
    if (skip) {
        unsigned char zero[16] = {0}, sink[32];
        int got;
        if (!EVP_EncryptUpdate(g_ctx, sink, &got, zero, skip))
            return ssl_fail();
    }
    return 0;
}

/* Run the positioned context over n bytes (in == out is fine: CTR is a stream). */
static int ctr_more(CTRObject *c, const unsigned char *in, unsigned char *out, Py_ssize_t n) {
    Py_ssize_t left = n;
    while (left > 0) {
        int k = left > (1 << 30) ? (1 << 30) : (int)left, got;
        if (!EVP_EncryptUpdate(g_ctx, out, &got, in, k))
            return ssl_fail();
        in += k;
        out += k;
        left -= k;
    }
    c->pos += (uint64_t)n;
    return 0;
}

static int ctr_run(CTRObject *c, const unsigned char *in, unsigned char *out, Py_ssize_t n) {
    if (!n)
        return 0;
    if (ctr_position(c) < 0)
        return -1;
    return ctr_more(c, in, out, n);
}

static PyObject *CTR_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    Py_buffer key, iv;
    if (!PyArg_ParseTuple(args, "y*y*:CTR", &key, &iv))
        return NULL;
    CTRObject *c = NULL;
    if (key.len != 32 || iv.len != 16) {
        PyErr_SetString(PyExc_ValueError, "AES-256-CTR takes a 32-byte key and a 16-byte IV");
    } else if ((c = (CTRObject *)type->tp_alloc(type, 0)) != NULL) {
        memcpy(c->key, key.buf, 32);
        memcpy(c->iv, iv.buf, 16);
        c->pos = 0;
    }
    PyBuffer_Release(&key);
    PyBuffer_Release(&iv);
    return (PyObject *)c;
}

static PyObject *CTR_update(CTRObject *self, PyObject *arg) {
    Py_buffer in;
    if (PyObject_GetBuffer(arg, &in, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *out = PyBytes_FromStringAndSize(NULL, in.len);
    if (out && ctr_run(self, in.buf, (unsigned char *)PyBytes_AS_STRING(out), in.len) < 0)
        Py_CLEAR(out);
    PyBuffer_Release(&in);
    return out;
}

static PyObject *CTR_update_into(CTRObject *self, PyObject *args) {
    Py_buffer in, out;
    if (!PyArg_ParseTuple(args, "y*w*:update_into", &in, &out))
        return NULL;
    PyObject *r = NULL;
    if (out.len < in.len)
        PyErr_SetString(PyExc_ValueError, "update_into: the buffer is shorter than the data");
    else if (ctr_run(self, in.buf, out.buf, in.len) == 0)
        r = PyLong_FromSsize_t(in.len);
    PyBuffer_Release(&in);
    PyBuffer_Release(&out);
    return r;
}

static PyObject *CTR_get_pos(CTRObject *self, void *closure) {
    return PyLong_FromUnsignedLongLong(self->pos);
}

/* -- shared buffers --------------------------------------------------------- */

/* One loop relays one chunk at a time, so every pipe shares these (as mtproto.py's _scratch). */
static PyObject *g_out;      /* bytearray the answers are written into */
static PyObject *g_out_view; /* a memoryview of all of it: answers are slices of it */
static unsigned char *g_cat; /* fake-TLS up: a held record start + the new bytes, walked as one */
static Py_ssize_t g_cat_len;

/* Room for n bytes of answer -> its start. A bigger buffer replaces the old one: views of the old
   one keep it alive (they hold its export), so a caller's view is never pulled from under it. */
static unsigned char *out_room(Py_ssize_t n) {
    if (g_out == NULL || PyByteArray_GET_SIZE(g_out) < n) {
        Py_ssize_t size = (n + 0xFFFF) & ~(Py_ssize_t)0xFFFF;
        PyObject *b = PyByteArray_FromStringAndSize(NULL, size);
        if (b == NULL)
            return NULL;
        PyObject *v = PyMemoryView_FromObject(b);
        if (v == NULL) {
            Py_DECREF(b);
            return NULL;
        }
        Py_XDECREF(g_out_view);
        Py_XDECREF(g_out);
        g_out = b;
        g_out_view = v;
    }
    return (unsigned char *)PyByteArray_AS_STRING(g_out);
}

static PyObject *answer(Py_ssize_t n) {
    return PySequence_GetSlice(g_out_view, 0, n);
}

/* -- Pipe ------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    CTRObject *c_dec, *c_enc, *d_enc, *d_dec;
    PyObject *error;    /* raised as error("tls") on a record no client sends */
    uint32_t x;         /* faketls.RecordSizer's xorshift state; 0: the client side is not fake-TLS */
    unsigned char *rbuf; /* fake-TLS: the start of a record not complete yet (malloc'd; NULL: none) */
    Py_ssize_t rlen;
} PipeObject;

static PyTypeObject PipeType;

/* faketls.RecordSizer.next(): where to cut the next full record. */
static Py_ssize_t sizer_next(PipeObject *p) {
    uint32_t x = p->x;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    p->x = x;
    return TLS_MAX_OUT - (Py_ssize_t)(x % JITTER_SPAN);
}

static Py_ssize_t tls_error(PipeObject *p) {
    PyErr_SetString(p->error, "tls"); /* MTProtoError("tls"): the tap counts it, the tunnel ends */
    return -1;
}

static int keep_tail(PipeObject *p, const unsigned char *src, Py_ssize_t n) {
    if (!n) {
        PyMem_Free(p->rbuf);
        p->rbuf = NULL;
        p->rlen = 0;
        return 0;
    }
    unsigned char *b = PyMem_Malloc(n); /* fresh: src may be the old one's copy in g_cat, never itself */
    if (b == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(b, src, n);
    PyMem_Free(p->rbuf);
    p->rbuf = b;
    p->rlen = n;
    return 0;
}

/* Client -> DC: n bytes at src -> the answer's length in g_out (-1: an exception is set). Fake-TLS: the
   payloads of the whole records, deciphered one after another, enciphered for the DC in place; a record
   cut short waits in rbuf. */
static Py_ssize_t conv_up(PipeObject *p, const unsigned char *src, Py_ssize_t n) {
    Py_ssize_t o = 0;
    if (p->x == 0) {
        unsigned char *out = out_room(n);
        if (out == NULL || ctr_run(p->c_dec, src, out, n) < 0 || ctr_run(p->d_enc, out, out, n) < 0)
            return -1;
        return n;
    }
    if (p->rlen) {
        Py_ssize_t need = p->rlen + n;
        if (g_cat_len < need) {
            unsigned char *c = PyMem_Realloc(g_cat, need);
            if (c == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            g_cat = c;
            g_cat_len = need;
        }
        memcpy(g_cat, p->rbuf, p->rlen);
        memcpy(g_cat + p->rlen, src, n);
        src = g_cat;
        n = need;
    }
    unsigned char *out = out_room(n);
    if (out == NULL)
        return -1;
    Py_ssize_t i = 0;
    int positioned = 0;
    while (n - i >= 5) {
        Py_ssize_t ln = (src[i + 3] << 8) | src[i + 4];
        if (src[i + 1] != 3 || src[i + 2] != 3 || ln > TLS_MAX_IN)
            return tls_error(p);
        if (n - i - 5 < ln)
            break;
        if (src[i] == REC_APPDATA) {
            if (ln) {
                if (!positioned && ctr_position(p->c_dec) < 0)
                    return -1;
                positioned = 1;
                if (ctr_more(p->c_dec, src + i + 5, out + o, ln) < 0)
                    return -1;
                o += ln;
            }
        } else if (src[i] != REC_CCS) {
            return tls_error(p); /* an alert or a renegotiation: nothing we speak */
        }
        i += 5 + ln;
    }
    if (keep_tail(p, src + i, n - i) < 0 || ctr_run(p->d_enc, out, out, o) < 0)
        return -1;
    return o;
}

/* DC -> client, as conv_up. Fake-TLS: one ApplicationData record when the chunk fits, else records cut
   where the sizer says (faketls.frame()); deciphered into place first, then enciphered for the client in
   place. */
static Py_ssize_t conv_down(PipeObject *p, const unsigned char *src, Py_ssize_t n) {
    if (p->x == 0) {
        unsigned char *out = out_room(n);
        if (out == NULL || ctr_run(p->d_dec, src, out, n) < 0 || ctr_run(p->c_enc, out, out, n) < 0)
            return -1;
        return n;
    }
    unsigned char *out = out_room(n + 5 * (n / WHOLE_MAX + 1)); /* all records but the last exceed WHOLE_MAX */
    if (out == NULL)
        return -1;
    Py_ssize_t i = 0, o = 0;
    if (n && ctr_position(p->d_dec) < 0)
        return -1;
    do {
        Py_ssize_t k = n <= WHOLE_MAX ? n : sizer_next(p);
        if (k > n - i)
            k = n - i;
        out[o] = REC_APPDATA;
        out[o + 1] = out[o + 2] = 3;
        out[o + 3] = (unsigned char)(k >> 8);
        out[o + 4] = (unsigned char)(k & 0xFF);
        if (k && ctr_more(p->d_dec, src + i, out + o + 5, k) < 0)
            return -1;
        i += k;
        o += 5 + k;
    } while (i < n);
    /* the client's cipher over the payloads between the headers just written */
    if (n && ctr_position(p->c_enc) < 0)
        return -1;
    for (Py_ssize_t j = 0; j < o;) {
        Py_ssize_t k = (out[j + 3] << 8) | out[j + 4];
        if (k && ctr_more(p->c_enc, out + j + 5, out + j + 5, k) < 0)
            return -1;
        j += 5 + k;
    }
    return o;
}

static Py_ssize_t convert(PipeObject *p, int down, const unsigned char *src, Py_ssize_t n) {
    return down ? conv_down(p, src, n) : conv_up(p, src, n);
}

static void Pipe_dealloc(PipeObject *p) {
    Py_XDECREF(p->c_dec);
    Py_XDECREF(p->c_enc);
    Py_XDECREF(p->d_enc);
    Py_XDECREF(p->d_dec);
    Py_XDECREF(p->error);
    PyMem_Free(p->rbuf);
    Py_TYPE(p)->tp_free((PyObject *)p);
}

/* -- Way: one direction of a Pipe, what the fast pump calls ---------------- */

typedef struct {
    PyObject_HEAD
    PipeObject *pipe;
    int down;
    uint64_t unsynced; /* bytes the table moved that take() has not handed to the counters yet */
} WayObject;

static PyTypeObject WayType;
static unsigned char *g_in; /* relay()'s read buffer, shared like the others */
static Py_ssize_t g_in_len;

/* way(data) -> a view of the converted bytes (valid until the next call of any way) */
static PyObject *Way_call(WayObject *w, PyObject *args, PyObject *kw) {
    PyObject *arg;
    if (!PyArg_UnpackTuple(args, "way", 1, 1, &arg))
        return NULL;
    Py_buffer in;
    if (PyObject_GetBuffer(arg, &in, PyBUF_SIMPLE) < 0)
        return NULL;
    Py_ssize_t m = convert(w->pipe, w->down, in.buf, in.len);
    PyBuffer_Release(&in);
    return m < 0 ? NULL : answer(m);
}

/* Read up to want bytes from sfd, convert them, send them to dfd. *n: bytes read (0: EOF; -1: nothing to
   read now; -2: the read failed). *tail: NULL when dfd took everything (or nothing was read), the bytes
   it did not take (a new reference; backpressure: the caller sends them later), or Py_True (borrowed)
   when the send failed. -> 0, or -1 with an exception set (a broken record, no memory). Both sockets are
   non-blocking. */
static int relay_once(WayObject *w, int sfd, int dfd, Py_ssize_t want, Py_ssize_t *n_out, PyObject **tail) {
    *tail = NULL;
    if (g_in_len < want) {
        unsigned char *b = PyMem_Realloc(g_in, want);
        if (b == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        g_in = b;
        g_in_len = want;
    }
    ssize_t n = recv(sfd, g_in, (size_t)want, 0);
    if (n <= 0) {
        *n_out = n == 0 ? 0 : (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? -1 : -2;
        return 0;
    }
    *n_out = n;
    Py_ssize_t m = convert(w->pipe, w->down, g_in, n);
    if (m < 0)
        return -1;
    const unsigned char *out = (const unsigned char *)PyByteArray_AS_STRING(g_out);
    Py_ssize_t sent = 0;
    while (sent < m) {
        ssize_t k = send(dfd, out + sent, (size_t)(m - sent), MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            *tail = Py_True;
            return 0;
        }
        sent += k;
    }
    if (sent < m && (*tail = PyBytes_FromStringAndSize((const char *)out + sent, m - sent)) == NULL)
        return -1;
    return 0;
}

/* relay_once's tail as Python sees it, a new reference: None (all sent), True (the send failed) or the bytes
   (already a new reference) */
static PyObject *tail_ref(PyObject *tail) {
    if (tail == NULL)
        tail = Py_None;
    if (tail == Py_None || tail == Py_True)
        Py_INCREF(tail);
    return tail;
}

/* way.relay(sfd, dfd, want) -> (n, tail): relay_once for Python; tail None when dfd took everything. */
static PyObject *Way_relay(WayObject *w, PyObject *args) {
    int sfd, dfd;
    Py_ssize_t want, n;
    PyObject *tail;
    if (!PyArg_ParseTuple(args, "iin:relay", &sfd, &dfd, &want))
        return NULL;
    if (want < 1) { /* a read of 0 bytes would look like EOF */
        PyErr_SetString(PyExc_ValueError, "relay: want at least 1 byte");
        return NULL;
    }
    if (relay_once(w, sfd, dfd, want, &n, &tail) < 0)
        return NULL;
    return Py_BuildValue("(nN)", n, tail_ref(tail));
}

/* way.take() -> the bytes the table moved this way since the last take() (counted now: zero after) */
static PyObject *Way_take(WayObject *w, PyObject *unused) {
    uint64_t n = w->unsynced;
    w->unsynced = 0;
    return PyLong_FromUnsignedLongLong(n);
}

static void Way_dealloc(WayObject *w) {
    Py_XDECREF(w->pipe);
    Py_TYPE(w)->tp_free((PyObject *)w);
}

static PyObject *Way_get_held(WayObject *w, void *closure) {
    return PyBytes_FromStringAndSize((const char *)w->pipe->rbuf, w->pipe->rlen);
}

static PyObject *Way_get_sizer(WayObject *w, void *closure) {
    return PyLong_FromUnsignedLong(w->pipe->x);
}

static PyObject *new_way(PipeObject *p, int down) {
    WayObject *w = PyObject_New(WayObject, &WayType);
    if (w != NULL) {
        Py_INCREF(p);
        w->pipe = p;
        w->down = down;
        w->unsynced = 0;
    }
    return (PyObject *)w;
}

/* c_dec.pipe(c_enc, d_enc, d_dec, sizer, rbuf, error) */
static PyObject *CTR_pipe(CTRObject *self, PyObject *args) {
    PyObject *c_enc, *d_enc, *d_dec, *error;
    unsigned long x;
    Py_buffer held;
    if (!PyArg_ParseTuple(args, "O!O!O!ky*O:pipe", &CTRType, &c_enc, &CTRType, &d_enc, &CTRType, &d_dec, &x, &held,
                          &error))
        return NULL;
    PipeObject *p = NULL;
    if (!PyExceptionClass_Check(error)) {
        PyErr_SetString(PyExc_TypeError, "pipe: error must be an exception class");
    } else if (x > 0xFFFFFFFFUL) {
        PyErr_SetString(PyExc_ValueError, "pipe: the sizer state is 32 bits");
    } else if ((p = PyObject_New(PipeObject, &PipeType)) != NULL) {
        Py_INCREF(self);
        Py_INCREF(c_enc);
        Py_INCREF(d_enc);
        Py_INCREF(d_dec);
        Py_INCREF(error);
        p->c_dec = self;
        p->c_enc = (CTRObject *)c_enc;
        p->d_enc = (CTRObject *)d_enc;
        p->d_dec = (CTRObject *)d_dec;
        p->error = error;
        p->x = (uint32_t)x;
        p->rbuf = NULL;
        p->rlen = 0;
        if (keep_tail(p, held.buf, held.len) < 0)
            Py_CLEAR(p);
    }
    PyBuffer_Release(&held);
    if (p == NULL)
        return NULL;
    PyObject *up = new_way(p, 0), *down = up ? new_way(p, 1) : NULL;
    Py_DECREF(p); /* the ways hold it */
    if (down == NULL) {
        Py_XDECREF(up);
        return NULL;
    }
    return Py_BuildValue("(NN)", up, down);
}

/* -- Table: the fast pump's epoll dispatch of MTProto chunks ------------------ */

#ifdef __linux__
typedef struct {
    WayObject *way; /* NULL: this descriptor's reads are not ours (Python dispatches its events) */
    PyObject *owner;
    int dfd;
    Py_ssize_t want;
} Entry;

typedef struct {
    PyObject_HEAD
    Entry *e; /* indexed by descriptor */
    int cap;
    PyObject *dirty; /* the owners of ways whose unsynced went from 0 to more since the last moved() */
    struct epoll_event *evs;
    int nevs;
    int epfd;          /* bind(): the epoll set table() polls, nevs events at a time */
    PyObject *on_left; /* bind(): on_left(events) for what table() leaves */
} TableObject;

static PyTypeObject TableType;

static PyObject *Table_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    if (!PyArg_ParseTuple(args, ":Table"))
        return NULL;
    TableObject *t = (TableObject *)type->tp_alloc(type, 0);
    if (t == NULL)
        return NULL;
    t->e = NULL;
    t->cap = 0;
    t->evs = NULL;
    t->nevs = 0;
    t->epfd = -1;
    t->on_left = NULL;
    if ((t->dirty = PyList_New(0)) == NULL) {
        Py_DECREF(t);
        return NULL;
    }
    return (PyObject *)t;
}

static void entry_clear(Entry *x) {
    Py_CLEAR(x->way);
    Py_CLEAR(x->owner);
}

static void Table_dealloc(TableObject *t) {
    for (int i = 0; i < t->cap; i++)
        entry_clear(&t->e[i]);
    PyMem_Free(t->e);
    PyMem_Free(t->evs);
    Py_XDECREF(t->dirty);
    Py_XDECREF(t->on_left);
    Py_TYPE(t)->tp_free((PyObject *)t);
}

/* table.watch(fd, way, dfd, want, owner): fd's reads are way's, relayed to dfd want bytes at a time */
static PyObject *Table_watch(TableObject *t, PyObject *args) {
    int fd, dfd;
    PyObject *way, *owner;
    Py_ssize_t want;
    if (!PyArg_ParseTuple(args, "iO!inO:watch", &fd, &WayType, &way, &dfd, &want, &owner))
        return NULL;
    if (fd < 0 || dfd < 0 || want < 1) {
        PyErr_SetString(PyExc_ValueError, "watch: descriptors are >= 0 and want >= 1");
        return NULL;
    }
    if (fd >= t->cap) {
        int cap = t->cap ? t->cap : 1024;
        while (cap <= fd)
            cap *= 2;
        Entry *e = PyMem_Realloc(t->e, (size_t)cap * sizeof(Entry));
        if (e == NULL)
            return PyErr_NoMemory();
        memset(e + t->cap, 0, (size_t)(cap - t->cap) * sizeof(Entry));
        t->e = e;
        t->cap = cap;
    }
    Entry *x = &t->e[fd];
    Py_INCREF(way);
    Py_INCREF(owner);
    entry_clear(x);
    x->way = (WayObject *)way;
    x->owner = owner;
    x->dfd = dfd;
    x->want = want;
    Py_RETURN_NONE;
}

/* table.unwatch(fd): Python dispatches fd's events again (a descriptor never watched: nothing to do) */
static PyObject *Table_unwatch(TableObject *t, PyObject *arg) {
    long fd = PyLong_AsLong(arg);
    if (fd == -1 && PyErr_Occurred())
        return NULL;
    if (fd >= 0 && fd < t->cap)
        entry_clear(&t->e[fd]);
    Py_RETURN_NONE;
}

/* The bound set's ready events -> [event left for Python]: (fd, events) as epoll reported it, or
   (fd, events, n, tail) when a watched way relayed and something is left to do (n <= 0: EOF, nothing,
   a failed read; tail: as Way.relay's), or (fd, events, -3, exception) when the way refused the bytes. */
static PyObject *poll_left(TableObject *t) {
    int k = epoll_wait(t->epfd, t->evs, t->nevs, 0);
    if (k < 0) {
        if (errno == EINTR)
            k = 0;
        else
            return PyErr_SetFromErrno(PyExc_OSError);
    }
    PyObject *left = PyList_New(0);
    if (left == NULL)
        return NULL;
    for (int i = 0; i < k; i++) {
        int fd = t->evs[i].data.fd;
        unsigned ev = t->evs[i].events;
        PyObject *item;
        if (ev == EPOLLIN && fd >= 0 && fd < t->cap && t->e[fd].way != NULL) {
            Entry *x = &t->e[fd];
            Py_ssize_t n;
            PyObject *tail;
            if (relay_once(x->way, fd, x->dfd, x->want, &n, &tail) < 0) {
                PyObject *type, *value, *tb;
                PyErr_Fetch(&type, &value, &tb);
                PyErr_NormalizeException(&type, &value, &tb);
                Py_XDECREF(type);
                Py_XDECREF(tb);
                if (value == NULL) {
                    Py_INCREF(Py_None);
                    value = Py_None;
                }
                item = Py_BuildValue("(iIiN)", fd, ev, -3, value);
            } else if (n > 0 && tail == NULL) {
                if (x->way->unsynced == 0 && PyList_Append(t->dirty, x->owner) < 0) {
                    Py_DECREF(left);
                    return NULL;
                }
                x->way->unsynced += (uint64_t)n;
                continue;
            } else {
                item = Py_BuildValue("(iInN)", fd, ev, n, tail_ref(tail));
            }
        } else {
            item = Py_BuildValue("(iI)", fd, ev);
        }
        if (item == NULL || PyList_Append(left, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(left);
            return NULL;
        }
        Py_DECREF(item);
    }
    return left;
}

/* table.bind(epfd, maxevents, on_left): table() polls epfd and calls on_left(events) with what it leaves;
   the event loop is handed the table itself as epfd's reader, so a chunk costs no Python frame at all */
static PyObject *Table_bind(TableObject *t, PyObject *args) {
    int epfd, most;
    PyObject *cb;
    if (!PyArg_ParseTuple(args, "iiO:bind", &epfd, &most, &cb))
        return NULL;
    if (!PyCallable_Check(cb)) {
        PyErr_SetString(PyExc_TypeError, "bind: on_left must be callable");
        return NULL;
    }
    if (most < 1) {
        PyErr_SetString(PyExc_ValueError, "bind: maxevents >= 1");
        return NULL;
    }
    struct epoll_event *evs = PyMem_Realloc(t->evs, (size_t)most * sizeof(struct epoll_event));
    if (evs == NULL)
        return PyErr_NoMemory();
    t->evs = evs;
    t->nevs = most;
    Py_INCREF(cb);
    Py_XDECREF(t->on_left);
    t->on_left = cb;
    t->epfd = epfd;
    Py_RETURN_NONE;
}

static PyObject *Table_call(TableObject *t, PyObject *args, PyObject *kw) {
    if (t->on_left == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "table(): bind() it first");
        return NULL;
    }
    PyObject *left = poll_left(t);
    if (left == NULL)
        return NULL;
    if (PyList_GET_SIZE(left) == 0) { /* every event was a chunk relayed here: no Python at all */
        Py_DECREF(left);
        Py_RETURN_NONE;
    }
    PyObject *r = PyObject_CallOneArg(t->on_left, left);
    Py_DECREF(left);
    return r;
}

/* table.moved() -> [owner]: whose ways have bytes for take(), each once, since the last call */
static PyObject *Table_moved(TableObject *t, PyObject *unused) {
    if (PyList_GET_SIZE(t->dirty) == 0)
        return PyList_New(0);
    PyObject *fresh = PyList_New(0);
    if (fresh == NULL)
        return NULL;
    PyObject *out = t->dirty;
    t->dirty = fresh;
    return out;
}

/* table.clear(): forget every watch (the poller closes) */
static PyObject *Table_clear(TableObject *t, PyObject *unused) {
    for (int i = 0; i < t->cap; i++)
        entry_clear(&t->e[i]);
    Py_RETURN_NONE;
}

static PyMethodDef Table_methods[] = {
    {"watch", (PyCFunction)Table_watch, METH_VARARGS, "(fd, way, dfd, want, owner): fd's reads are way's"},
    {"unwatch", (PyCFunction)Table_unwatch, METH_O, "(fd): Python dispatches fd's events again"},
    {"bind", (PyCFunction)Table_bind, METH_VARARGS, "(epfd, maxevents, on_left): what table() polls and calls"},
    {"moved", (PyCFunction)Table_moved, METH_NOARGS, "() -> the owners whose ways have bytes to take()"},
    {"clear", (PyCFunction)Table_clear, METH_NOARGS, "(): forget every watch"},
    {NULL},
};

static PyTypeObject TableType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "relay.runtime._mtpump.Table",
    .tp_basicsize = sizeof(TableObject),
    .tp_dealloc = (destructor)Table_dealloc,
    .tp_call = (ternaryfunc)Table_call,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "the fast pump's epoll dispatch: MTProto chunks relayed without a Python call",
    .tp_new = Table_new,
    .tp_methods = Table_methods,
};
#endif

/* -- types and module ----------------------------------------------------- */

static PyMethodDef CTR_methods[] = {
    {"update", (PyCFunction)CTR_update, METH_O, "data -> bytes: the next len(data) bytes of the stream applied"},
    {"update_into", (PyCFunction)CTR_update_into, METH_VARARGS, "(data, buf) -> n: the same, written into buf"},
    {"pipe", (PyCFunction)CTR_pipe, METH_VARARGS,
     "(c_enc, d_enc, d_dec, sizer, rbuf, error) -> (up, down), the ways of a pipe with this cipher as the "
     "client-side decryptor"},
    {NULL},
};

static PyGetSetDef CTR_getset[] = {
    {"pos", (getter)CTR_get_pos, NULL, "keystream bytes used so far", NULL},
    {NULL},
};

static PyTypeObject CTRType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "relay.runtime._mtpump.CTR",
    .tp_basicsize = sizeof(CTRObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "AES-256-CTR(key, iv) holding no OpenSSL context between calls",
    .tp_new = CTR_new,
    .tp_methods = CTR_methods,
    .tp_getset = CTR_getset,
};

static PyTypeObject PipeType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "relay.runtime._mtpump.Pipe",
    .tp_basicsize = sizeof(PipeObject),
    .tp_dealloc = (destructor)Pipe_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "an MTProto tunnel's ciphers and fake-TLS state, shared by its two ways",
};

static PyMethodDef Way_methods[] = {
    {"relay", (PyCFunction)Way_relay, METH_VARARGS, "(sfd, dfd, want) -> (n, tail): read, convert, send"},
    {"take", (PyCFunction)Way_take, METH_NOARGS, "() -> bytes the table moved since the last take()"},
    {NULL},
};

static PyGetSetDef Way_getset[] = {
    {"held", (getter)Way_get_held, NULL, "fake-TLS: the start of a record not complete yet", NULL},
    {"sizer", (getter)Way_get_sizer, NULL, "fake-TLS: the record sizer's state (0: none)", NULL},
    {NULL},
};

static PyTypeObject WayType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "relay.runtime._mtpump.Way",
    .tp_basicsize = sizeof(WayObject),
    .tp_dealloc = (destructor)Way_dealloc,
    .tp_call = (ternaryfunc)Way_call,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "one direction of an MTProto tunnel: way(data) -> view, way.relay(sfd, dfd, want)",
    .tp_methods = Way_methods,
    .tp_getset = Way_getset,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_mtpump", "MTProto's per-chunk work in one native call (see the C file's head).", -1,
    NULL,
};

/* the type ready and in the module under name -> 0, or -1 with an exception set */
static int add_type(PyObject *m, const char *name, PyTypeObject *type) {
    if (PyType_Ready(type) < 0)
        return -1;
    Py_INCREF(type);
    if (PyModule_AddObject(m, name, (PyObject *)type) < 0) {
        Py_DECREF(type);
        return -1;
    }
    return 0;
}

PyMODINIT_FUNC PyInit__mtpump(void) {
    g_ctx = EVP_CIPHER_CTX_new();
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    g_aes = EVP_CIPHER_fetch(NULL, "AES-256-CTR", NULL);
#else
    g_aes = EVP_aes_256_ctr();
#endif
    if (g_ctx == NULL || g_aes == NULL) {
        PyErr_SetString(PyExc_ImportError, "OpenSSL has no AES-256-CTR");
        return NULL;
    }
    if (PyType_Ready(&PipeType) < 0 || PyType_Ready(&WayType) < 0) /* made by CTR.pipe(), not by name */
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (add_type(m, "CTR", &CTRType) < 0
#ifdef __linux__
        || add_type(m, "Table", &TableType) < 0 /* the fast pump's epoll dispatch: Linux's epoll only */
#endif
    ) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
