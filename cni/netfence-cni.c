// netfence-cni, the executable the container runtime starts for every pod. Starting node
// costs several times a compiled interface plugin, so this binary only carries the
// invocation (the CNI_* environment and the netconf on stdin) to the agent, which runs the
// plugin's one implementation (src/cni/plugin.ts) in-process, and writes back its answer.
// It knows no CNI semantics beyond where the agent is and how long to wait for it. When
// the agent cannot answer, it runs that same implementation from the node bundle installed
// beside it (netfence/node netfence/netfence-cni.js), so a pod start with the agent down
// behaves as the bundle alone does.
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

// Mirrors src/agent/cni-protocol.ts (DEFAULT_AGENT_SOCKET) and src/cni/plugin.ts.
#define DEFAULT_SOCKET "/run/netfence/agent.sock"
#define DEFAULT_TIMEOUT_MS 15000
// DEL and STATUS never wait longer on the agent (plugin.ts BRIEF_TIMEOUT_MS).
#define BRIEF_TIMEOUT_MS 2000
// Tells the bundle the agent's deadline is spent already (src/cni/main.ts).
#define UNREACHABLE_ENV "NETFENCE_CNI_UNREACHABLE"
#define MAX_ANSWER_BYTES (16 << 20)
#define MAX_DEPTH 256

extern char **environ;

struct buf {
  char *p;
  size_t len, cap;
};

static void put(struct buf *b, const void *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (b->len + n + 1 > cap) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      static const char oom[] = "netfence-cni: out of memory\n";
      (void)!write(2, oom, sizeof oom - 1);
      _exit(1);
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void puts_(struct buf *b, const char *s) { put(b, s, strlen(s)); }

static void putf(struct buf *b, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  put(b, tmp, n < 0 ? 0 : (size_t)n >= sizeof tmp ? sizeof tmp - 1 : (size_t)n);
}

/** Appends s as a JSON string (quotes included). */
static void put_json_string(struct buf *b, const char *s, size_t n) {
  put(b, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      char esc[2] = {'\\', (char)c};
      put(b, esc, 2);
    } else if (c < 0x20) {
      putf(b, "\\u%04x", c);
    } else {
      put(b, &s[i], 1);
    }
  }
  put(b, "\"", 1);
}

/** Waits until fd is ready for `events`; deadline < 0: no deadline. 0 on timeout. */
static int wait_fd(int fd, short events, long long deadline) {
  for (;;) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long left = deadline < 0 ? -1 : deadline - (now.tv_sec * 1000LL + now.tv_nsec / 1000000);
    if (deadline >= 0 && left <= 0) return 0;
    struct pollfd p = {.fd = fd, .events = events};
    int r = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
    if (r > 0) return 1;
    if (r < 0 && errno != EINTR) return -1;
  }
}

static long long now_ms(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return now.tv_sec * 1000LL + now.tv_nsec / 1000000;
}

/** Reads fd to its end (a closed stdin is empty: VERSION needs none). */
static void read_all(int fd, struct buf *b) {
  char chunk[65536];
  put(b, "", 0);
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n > 0) put(b, chunk, (size_t)n);
    else if (n == 0 || errno == EBADF) return;
    else if (errno == EAGAIN) wait_fd(fd, POLLIN, -1);
    else if (errno != EINTR) return;
  }
}

static void write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w > 0) {
      p += w;
      n -= (size_t)w;
    } else if (w < 0 && errno == EAGAIN) {
      wait_fd(fd, POLLOUT, -1);
    } else if (w < 0 && errno != EINTR) {
      return;
    }
  }
}

// ---- A strict JSON reader (RFC 8259): the few top-level keys this binary needs, every
// other value validated and skipped. Anything it does not accept sends the invocation to
// the bundle, whose JSON.parse has the last word.

struct json {
  const char *p, *end;
  int depth;
};

static void ws(struct json *j) {
  while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

static int hex4(struct json *j, unsigned *out) {
  if (j->end - j->p < 4) return 0;
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = *j->p++;
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return 0;
  }
  *out = v;
  return 1;
}

static void put_utf8(struct buf *b, unsigned cp) {
  char u[4];
  if (cp < 0x80) {
    u[0] = (char)cp;
    put(b, u, 1);
  } else if (cp < 0x800) {
    u[0] = (char)(0xc0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3f));
    put(b, u, 2);
  } else if (cp < 0x10000) {
    u[0] = (char)(0xe0 | cp >> 12), u[1] = (char)(0x80 | (cp >> 6 & 0x3f)), u[2] = (char)(0x80 | (cp & 0x3f));
    put(b, u, 3);
  } else {
    u[0] = (char)(0xf0 | cp >> 18), u[1] = (char)(0x80 | (cp >> 12 & 0x3f)), u[2] = (char)(0x80 | (cp >> 6 & 0x3f)), u[3] = (char)(0x80 | (cp & 0x3f));
    put(b, u, 4);
  }
}

/** A string; its decoded bytes go to out unless out is NULL. A lone surrogate becomes
 *  U+FFFD, as node writes it. */
static int string(struct json *j, struct buf *out) {
  if (j->p >= j->end || *j->p != '"') return 0;
  j->p++;
  if (out) out->len = 0, put(out, "", 0);
  while (j->p < j->end) {
    unsigned char c = (unsigned char)*j->p++;
    if (c == '"') return 1;
    if (c < 0x20) return 0;
    if (c != '\\') {
      if (out) put(out, &c, 1);
      continue;
    }
    if (j->p >= j->end) return 0;
    char e = *j->p++;
    const char *simple = strchr("\"\\/bfnrt", e);
    if (e && simple) {
      static const char to[] = "\"\\/\b\f\n\r\t";
      if (out) put(out, &to[simple - "\"\\/bfnrt"], 1);
      continue;
    }
    unsigned cp;
    if (e != 'u' || !hex4(j, &cp)) return 0;
    if (cp >= 0xd800 && cp < 0xdc00 && j->end - j->p >= 6 && j->p[0] == '\\' && j->p[1] == 'u') {
      struct json lo = {j->p + 2, j->end, 0};
      unsigned low;
      if (hex4(&lo, &low) && low >= 0xdc00 && low < 0xe000) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
        j->p = lo.p;
      }
    }
    if (cp >= 0xd800 && cp < 0xe000) cp = 0xfffd;
    if (out) put_utf8(out, cp);
  }
  return 0;
}

static int digits(struct json *j) {
  const char *start = j->p;
  while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
  return j->p > start;
}

/** A number by the JSON grammar, converted by strtod. */
static int number(struct json *j, double *out) {
  const char *start = j->p;
  if (j->p < j->end && *j->p == '-') j->p++;
  if (j->p < j->end && *j->p == '0') j->p++;
  else if (!digits(j)) return 0;
  if (j->p < j->end && *j->p == '.' && (j->p++, !digits(j))) return 0;
  if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
    j->p++;
    if (j->p < j->end && (*j->p == '+' || *j->p == '-')) j->p++;
    if (!digits(j)) return 0;
  }
  char tmp[64];
  size_t n = (size_t)(j->p - start);
  if (n >= sizeof tmp) return 0;
  memcpy(tmp, start, n);
  tmp[n] = '\0';
  *out = strtod(tmp, NULL);
  return 1;
}

static int literal(struct json *j, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0) return 0;
  j->p += n;
  return 1;
}

typedef int (*field_fn)(struct json *j, const struct buf *key, void *ctx);

static int value(struct json *j);

/** An object; field() consumes each member's value. */
static int object(struct json *j, field_fn field, void *ctx) {
  if (j->p >= j->end || *j->p != '{' || ++j->depth > MAX_DEPTH) return 0;
  j->p++;
  ws(j);
  if (j->p < j->end && *j->p == '}') return j->p++, j->depth--, 1;
  struct buf key = {0};
  for (;;) {
    ws(j);
    if (!string(j, &key)) break;
    ws(j);
    if (j->p >= j->end || *j->p++ != ':') break;
    ws(j);
    if (!field(j, &key, ctx)) break;
    ws(j);
    if (j->p < j->end && *j->p == ',') {
      j->p++;
      continue;
    }
    if (j->p < j->end && *j->p == '}') {
      free(key.p);
      j->p++;
      j->depth--;
      return 1;
    }
    break;
  }
  free(key.p);
  return 0;
}

static int skip_field(struct json *j, const struct buf *key, void *ctx) {
  (void)key, (void)ctx;
  return value(j);
}

static int value(struct json *j) {
  double d;
  if (j->p >= j->end) return 0;
  switch (*j->p) {
  case '{':
    return object(j, skip_field, NULL);
  case '[':
    if (++j->depth > MAX_DEPTH) return 0;
    j->p++;
    ws(j);
    if (j->p < j->end && *j->p == ']') return j->p++, j->depth--, 1;
    for (;;) {
      ws(j);
      if (!value(j)) return 0;
      ws(j);
      if (j->p < j->end && *j->p == ',') j->p++;
      else if (j->p < j->end && *j->p == ']') return j->p++, j->depth--, 1;
      else return 0;
    }
  case '"':
    return string(j, NULL);
  case 't':
    return literal(j, "true");
  case 'f':
    return literal(j, "false");
  case 'n':
    return literal(j, "null");
  default:
    return number(j, &d);
  }
}

/** Parses text as one object, whitespace around it. */
static int parse_object(const struct buf *text, field_fn field, void *ctx) {
  struct json j = {text->p, text->p + text->len, 0};
  ws(&j);
  if (!object(&j, field, ctx)) return 0;
  ws(&j);
  return j.p == j.end;
}

static int key_is(const struct buf *key, const char *name) { return key->len == strlen(name) && memcmp(key->p, name, key->len) == 0; }

// ---- The netconf: where the agent is, how long to wait.

struct conf {
  struct buf socket;
  long long timeout_ms;
  int bad; // a key this binary reads has a value it cannot use: the bundle reports it
};

static int conf_field(struct json *j, const struct buf *key, void *ctx) {
  struct conf *c = ctx;
  if (key_is(key, "agentSocket")) {
    if (j->p >= j->end || *j->p != '"') return c->bad = 1, value(j);
    if (!string(j, &c->socket)) return 0;
    struct sockaddr_un sa;
    c->bad = c->socket.len == 0 || c->socket.len >= sizeof sa.sun_path || strlen(c->socket.p) != c->socket.len;
    return 1;
  }
  if (key_is(key, "agentTimeoutMs")) {
    double d;
    if (j->p < j->end && (*j->p == '-' || (*j->p >= '0' && *j->p <= '9'))) {
      if (!number(j, &d)) return 0;
      c->bad = !(d > 0);
      c->timeout_ms = d < 1 ? 1 : d > INT_MAX ? INT_MAX : (long long)d;
      return 1;
    }
    return c->bad = 1, value(j);
  }
  return value(j);
}

/** The netconf's agent keys; 0 when the bundle must see this invocation. An empty stdin
 *  (VERSION) has the defaults. */
static int read_conf(const struct buf *in, struct conf *c) {
  puts_(&c->socket, DEFAULT_SOCKET);
  c->timeout_ms = DEFAULT_TIMEOUT_MS;
  c->bad = 0;
  struct json j = {in->p, in->p + in->len, 0};
  ws(&j);
  if (j.p == j.end) return 1;
  return parse_object(in, conf_field, c) && !c->bad;
}

// ---- The agent's answer: {"exitCode": N, "stdout": "...", "stderr": "..."}.

struct answer {
  long exit_code;
  struct buf out, err;
  int seen; // bit per field
};

static int answer_field(struct json *j, const struct buf *key, void *ctx) {
  struct answer *a = ctx;
  if (key_is(key, "exitCode")) {
    double d;
    if (!number(j, &d) || d < 0 || d > 255 || d != (long)d) return 0;
    a->exit_code = (long)d;
    a->seen |= 1;
    return 1;
  }
  if (key_is(key, "stdout")) return a->seen |= 2, string(j, &a->out);
  if (key_is(key, "stderr")) return a->seen |= 4, string(j, &a->err);
  return value(j);
}

// ---- The agent socket.

enum ask_result { ASK_OK, ASK_NO_CONNECT, ASK_TIMEOUT, ASK_BROKEN };

/** Sends req and reads one answer line into ans, within timeout_ms of now. */
static enum ask_result ask(const char *path, const struct buf *req, long long timeout_ms, struct buf *ans) {
  long long deadline = now_ms() + timeout_ms;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ASK_NO_CONNECT;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  memcpy(sa.sun_path, path, strlen(path));
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    close(fd);
    return ASK_NO_CONNECT;
  }
  enum ask_result r = ASK_BROKEN;
  for (size_t off = 0; off < req->len;) {
    ssize_t n = send(fd, req->p + off, req->len - off, MSG_NOSIGNAL);
    if (n > 0) off += (size_t)n;
    else if (n < 0 && errno == EAGAIN) {
      int w = wait_fd(fd, POLLOUT, deadline);
      if (w <= 0) {
        r = w == 0 ? ASK_TIMEOUT : ASK_BROKEN;
        goto out;
      }
    } else if (n < 0 && errno != EINTR) goto out;
  }
  put(ans, "", 0);
  for (;;) {
    char chunk[65536];
    ssize_t n = recv(fd, chunk, sizeof chunk, 0);
    if (n > 0) {
      char *nl = memchr(chunk, '\n', (size_t)n);
      put(ans, chunk, nl ? (size_t)(nl - chunk) : (size_t)n);
      if (nl) {
        r = ASK_OK;
        goto out;
      }
      if (ans->len > MAX_ANSWER_BYTES) goto out;
    } else if (n == 0) {
      goto out; // closed without an answer
    } else if (errno == EAGAIN) {
      int w = wait_fd(fd, POLLIN, deadline);
      if (w <= 0) {
        r = w == 0 ? ASK_TIMEOUT : ASK_BROKEN;
        goto out;
      }
    } else if (errno != EINTR) {
      goto out;
    }
  }
out:
  close(fd);
  return r;
}

/** {"op":"cni","env":{CNI_* variables},"stdin":"..."} (cni-protocol.ts PluginRequest). */
static void build_request(const struct buf *in, struct buf *req) {
  puts_(req, "{\"op\":\"cni\",\"env\":{");
  int first = 1;
  for (char **e = environ; *e; e++) {
    const char *eq = strchr(*e, '=');
    if (strncmp(*e, "CNI_", 4) != 0 || !eq) continue;
    if (!first) put(req, ",", 1);
    first = 0;
    put_json_string(req, *e, (size_t)(eq - *e));
    put(req, ":", 1);
    put_json_string(req, eq + 1, strlen(eq + 1));
  }
  puts_(req, "},\"stdin\":");
  put_json_string(req, in->p, in->len);
  puts_(req, "}\n");
}

// ---- The bundle, when the agent cannot answer.

/** Runs <own directory>/netfence/node on netfence-cni.js with the same stdin; unreachable
 *  (or NULL) tells it the agent was asked already and why it did not answer. */
__attribute__((noreturn)) static void run_bundle(const struct buf *in, const char *unreachable) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  struct buf node = {0}, bundle = {0}, msg = {0};
  if (n > 0) {
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    *slash = '\0';
    putf(&node, "%s/netfence/node", self);
    putf(&bundle, "%s/netfence/netfence-cni.js", self);
    // The bundle reads its stdin from the start: a memory file holding what this one read.
    int fd = memfd_create("netfence-cni-stdin", 0);
    if (fd >= 0) {
      write_all(fd, in->p, in->len);
      lseek(fd, 0, SEEK_SET);
      if (fd != 0) dup2(fd, 0), close(fd);
    }
    // The runtime's environment is not node's to use: NODE_OPTIONS (--require hooks) and
    // NODE_EXTRA_CA_CERTS (a CA bundle parsed at start) would run at every pod start.
    unsetenv("NODE_OPTIONS");
    unsetenv("NODE_EXTRA_CA_CERTS");
    if (unreachable) setenv(UNREACHABLE_ENV, unreachable, 1);
    else unsetenv(UNREACHABLE_ENV);
    char *argv[] = {node.p, bundle.p, NULL};
    execv(node.p, argv);
    putf(&msg, "run %s: %s", node.p, strerror(errno));
  } else {
    putf(&msg, "find own directory: /proc/self/exe: %s", strerror(errno));
  }
  // A broken installation: say so in a CNI error (the runtime shows msg).
  struct buf out = {0};
  puts_(&out, "{\"cniVersion\":\"1.1.0\",\"code\":11,\"msg\":");
  static const char what[] = "netfence-cni: agent unreachable and no fallback";
  put_json_string(&out, what, sizeof what - 1);
  puts_(&out, ",\"details\":");
  put_json_string(&out, msg.p, msg.len);
  puts_(&out, "}\n");
  write_all(1, out.p, out.len);
  _exit(1);
}

int main(void) {
  struct buf in = {0};
  read_all(0, &in);
  struct conf conf = {0};
  if (!read_conf(&in, &conf)) run_bundle(&in, NULL);
  const char *command = getenv("CNI_COMMAND");
  long long timeout = conf.timeout_ms;
  if (command && (strcmp(command, "DEL") == 0 || strcmp(command, "STATUS") == 0) && timeout > BRIEF_TIMEOUT_MS) timeout = BRIEF_TIMEOUT_MS;

  struct buf req = {0}, line = {0};
  build_request(&in, &req);
  enum ask_result asked = ask(conf.socket.p, &req, timeout, &line);
  if (asked == ASK_TIMEOUT) {
    // The deadline is spent: the bundle answers as for an unreachable agent, at once.
    struct buf why = {0};
    putf(&why, "ask agent %s: no answer within %lld ms", conf.socket.p, timeout);
    run_bundle(&in, why.p);
  }
  // Not listening, or closed without an answer: the bundle asks again in its own protocol.
  if (asked != ASK_OK) run_bundle(&in, NULL);
  struct answer a = {0};
  // An answer it cannot read (an agent that predates the forwarded invocation answers
  // with an error line): the bundle asks again in the per-command protocol.
  if (!parse_object(&line, answer_field, &a) || a.seen != 7) run_bundle(&in, NULL);
  write_all(2, a.err.p ? a.err.p : "", a.err.len);
  write_all(1, a.out.p ? a.out.p : "", a.out.len);
  return (int)a.exit_code;
}
