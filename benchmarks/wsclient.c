/*
 * The compiled WebSocket load generator: the same clients, command line and JSON-lines commands
 * as benchmarks/wsclient.py (read its docstring), for when Python cannot keep up (a page of
 * 100 events to 1000 clients is ~100 MB to read).  benchmarks/clients.py compiles it with the
 * system C compiler on first use and falls back to wsclient.py without one.
 *
 * Differences: registration payloads other than "no filters" come from --register-file (one
 * JSON message per line, line i for client i); the "register" command takes {"file": path}.
 *
 *   cc -O2 -o wsclient benchmarks/wsclient.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#ifndef SO_TIMESTAMPNS
#define SO_TIMESTAMPNS 35
#endif

enum { CONNECTING, HANDSHAKE, OPEN, CLOSED };

typedef struct {
    double *v;
    size_t n, cap;
} dvec;

typedef struct {
    int fd, index, state;
    char head[8192];
    size_t headlen;
    uint64_t skip;
    int skipop;
    unsigned char partial[16];
    int partiallen;
    long texts, base;
    dvec times, reads;
    int closecode;
    int timing; /* record times (--timestamps, once connected) */
    int full; /* keep payloads: the ids of the events (client 0 with --timestamps) */
    unsigned char *buf;
    size_t buflen, bufcap;
    char (*ids)[31];
    size_t nids, capids;
} conn_t;

static struct {
    const char *host, *path, *filters, *regfile;
    int port, count, first, timestamps, stall, parallel, rcvbuf;
    double connect_timeout;
} args = {"127.0.0.1", "/ws", "all", NULL, 0, 0, 0, 0, 0, 256, 0, 120.0};

static conn_t *conns;
static int epfd;
static long closed_count;
static long close_codes[8]; /* counts by code, see code_slot */
static int close_code_values[8];
static int ncodes;
static double last_frame;
static char **payloads; /* register message per client, or NULL for the default */

/* the pending "expect"/"register" */
static int waiting; /* 0 none, 1 register, 2 expect */
static long *targets;
static double deadline;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_utime.tv_usec * 1e-6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec * 1e-6;
}

static void die(const char *fmt, const char *what) {
    fprintf(stderr, fmt, what);
    fputc('\n', stderr);
    exit(1);
}

static void dpush(dvec *d, double x) {
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 1024;
        d->v = realloc(d->v, d->cap * sizeof(double));
        if (!d->v) die("%s", "out of memory");
    }
    d->v[d->n++] = x;
}

static void sendall(int fd, const unsigned char *data, size_t len) {
    while (len) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                struct timespec pause = {0, 100000};
                nanosleep(&pause, NULL);
                continue;
            }
            return;
        }
        data += n;
        len -= (size_t)n;
    }
}

/* a masked client frame */
static void send_frame(int fd, int opcode, const unsigned char *payload, size_t n) {
    unsigned char *f = malloc(n + 14);
    size_t h = 0;
    f[h++] = 0x80 | opcode;
    if (n < 126) {
        f[h++] = 0x80 | n;
    } else if (n < 65536) {
        f[h++] = 0x80 | 126;
        f[h++] = n >> 8;
        f[h++] = n & 0xff;
    } else {
        f[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--) f[h++] = (n >> (8 * i)) & 0xff;
    }
    unsigned char mask[4];
    for (int i = 0; i < 4; i++) mask[i] = rand() & 0xff;
    memcpy(f + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < n; i++) f[h + i] = payload[i] ^ mask[i & 3];
    sendall(fd, f, h + n);
    free(f);
}

static const char *DEFAULT_REGISTER = "{\"type\": \"register\", \"filters\": {}}";

static void send_register(conn_t *c) {
    const char *msg = payloads ? payloads[c->index - args.first] : DEFAULT_REGISTER;
    send_frame(c->fd, 1, (const unsigned char *)msg, strlen(msg));
}

static void load_payloads(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) die("cannot read %s", path);
    char **all = calloc(args.count, sizeof(char *));
    char *line = NULL;
    size_t cap = 0;
    long i = 0;
    while (getline(&line, &cap, f) > 0) {
        if (i >= args.first && i < args.first + args.count) {
            line[strcspn(line, "\n")] = 0;
            all[i - args.first] = strdup(line);
        }
        i++;
    }
    free(line);
    fclose(f);
    for (int k = 0; k < args.count; k++)
        if (!all[k]) die("%s has too few lines", path);
    if (payloads) {
        for (int k = 0; k < args.count; k++) free(payloads[k]);
        free(payloads);
    }
    payloads = all;
}

static void lost(conn_t *c) {
    if (c->state == CLOSED) return;
    c->state = CLOSED;
    closed_count++;
    int slot = 0;
    while (slot < ncodes && close_code_values[slot] != c->closecode) slot++;
    if (slot == ncodes && ncodes < 8) close_code_values[ncodes++] = c->closecode;
    if (slot < 8) close_codes[slot]++;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
}

static void text_frame(conn_t *c, double t) {
    c->texts++;
    last_frame = t;
    if (c->timing) dpush(&c->times, t);
}

/* a whole frame other than a text frame counted by scan() (payload NULL: not at hand) */
static void frame(conn_t *c, int op, const unsigned char *payload, size_t n, double t) {
    if (op == 1) {
        text_frame(c, t);
    } else if (op == 8) {
        c->closecode = (payload && n >= 2) ? (payload[0] << 8 | payload[1]) : -1;
        lost(c);
    } else if (op == 9 && payload) {
        send_frame(c->fd, 0xA, payload, n);
    }
}

/* a frame header at p (avail bytes): 0 when cut short */
static int header(const unsigned char *p, size_t avail, int *op, uint64_t *len, size_t *hl) {
    if (avail < 2) return 0;
    *op = p[0] & 0x0f;
    uint64_t l = p[1] & 0x7f;
    if (l < 126) {
        *hl = 2;
    } else if (l == 126) {
        if (avail < 4) return 0;
        l = (uint64_t)p[2] << 8 | p[3];
        *hl = 4;
    } else {
        if (avail < 10) return 0;
        l = 0;
        for (int i = 0; i < 8; i++) l = l << 8 | p[2 + i];
        *hl = 10;
    }
    *len = l;
    return 1;
}

/* count frames from their headers alone (payloads are skipped) */
static void scan(conn_t *c, const unsigned char *data, size_t n, double t) {
    size_t pos = 0;
    int op;
    uint64_t len;
    size_t hl;
    if (c->partiallen) {
        /* a header cut by the previous read */
        unsigned char h[16];
        size_t have = (size_t)c->partiallen, take = 10 - have < n ? 10 - have : n;
        memcpy(h, c->partial, have);
        memcpy(h + have, data, take);
        if (!header(h, have + take, &op, &len, &hl)) {
            memcpy(c->partial + have, data, take);
            c->partiallen = (int)(have + take);
            return;
        }
        c->partiallen = 0;
        pos = hl - have;
        if (pos + len > n) {
            c->skip = pos + len - n;
            c->skipop = op;
            return;
        }
        if (op == 1) text_frame(c, t);
        else {
            frame(c, op, data + pos, len, t);
            if (c->state == CLOSED) return;
        }
        pos += len;
    } else if (c->skip) {
        if (c->skip > n) {
            c->skip -= n;
            return;
        }
        pos = c->skip;
        c->skip = 0;
        frame(c, c->skipop, NULL, 0, t);
        if (c->state == CLOSED) return;
    }
    while (pos < n) {
        if (!header(data + pos, n - pos, &op, &len, &hl)) {
            c->partiallen = (int)(n - pos);
            memcpy(c->partial, data + pos, n - pos);
            return;
        }
        uint64_t end = pos + hl + len;
        if (end > n) {
            c->skip = end - n;
            c->skipop = op;
            return;
        }
        if (op == 1) text_frame(c, t);
        else {
            frame(c, op, data + pos + hl, len, t);
            if (c->state == CLOSED) return;
        }
        pos = end;
    }
}

/* keep payloads (client 0 with --timestamps): the id of each event */
static void parse_full(conn_t *c, const unsigned char *data, size_t n, double t) {
    if (c->buflen + n > c->bufcap) {
        c->bufcap = (c->buflen + n) * 2;
        c->buf = realloc(c->buf, c->bufcap);
    }
    memcpy(c->buf + c->buflen, data, n);
    c->buflen += n;
    size_t pos = 0;
    int op;
    uint64_t len;
    size_t hl;
    while (header(c->buf + pos, c->buflen - pos, &op, &len, &hl)) {
        size_t start = pos + hl;
        if (start + len > c->buflen) break;
        if (op == 1 && c->texts >= c->base) {
            const char *p = memmem(c->buf + start, len < 120 ? len : 120, "\"id\":", 5);
            if (p) {
                p += 5;
                if (*p == ' ') p++;
                if (*p == '"' && (size_t)((const unsigned char *)p - c->buf) + 31 < start + len) {
                    if (c->nids == c->capids) {
                        c->capids = c->capids ? c->capids * 2 : 1024;
                        c->ids = realloc(c->ids, c->capids * sizeof *c->ids);
                    }
                    memcpy(c->ids[c->nids], p + 1, 30);
                    c->ids[c->nids][30] = 0;
                    c->nids++;
                }
            }
        }
        frame(c, op, c->buf + start, len, t);
        if (c->state == CLOSED) return;
        pos = start + len;
    }
    memmove(c->buf, c->buf + pos, c->buflen - pos);
    c->buflen -= pos;
}

static unsigned char rbuf[1 << 18];

static void handle(conn_t *c, const unsigned char *data, size_t n, double t, double read_at) {
    if (c->state == HANDSHAKE) {
        size_t take = n;
        if (c->headlen + take > sizeof c->head - 1) take = sizeof c->head - 1 - c->headlen;
        memcpy(c->head + c->headlen, data, take);
        c->headlen += take;
        c->head[c->headlen] = 0;
        char *end = strstr(c->head, "\r\n\r\n");
        if (!end) return;
        if (strncmp(c->head, "HTTP/1.1 101", 12) != 0) die("handshake refused: %.200s", c->head);
        c->state = OPEN;
        size_t used = (size_t)(end + 4 - c->head);
        size_t before = c->headlen - take;           /* head bytes from earlier reads */
        size_t offset = used > before ? used - before : 0;  /* where frames start in data */
        data += offset;
        n -= offset;
        if (!n) return;
    }
    size_t before = c->times.n;
    if (c->full) parse_full(c, data, n, t);
    else scan(c, data, n, t);
    if (c->timing && c->times.n > before)
        for (size_t i = before; i < c->times.n; i++) dpush(&c->reads, read_at);
}

static void read_conn(conn_t *c) {
    ssize_t n;
    double stamp = 0;
    if (args.timestamps && c->state == OPEN) {
        /* 64 KiB reads: the kernel stamps a read with the arrival of its newest segment */
        struct iovec iov = {rbuf, 1 << 16};
        char control[256];
        struct msghdr msg = {0};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        n = recvmsg(c->fd, &msg, 0);
        if (n > 0)
            for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
                if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SO_TIMESTAMPNS) {
                    struct timespec ts;
                    memcpy(&ts, CMSG_DATA(cm), sizeof ts);
                    stamp = ts.tv_sec + ts.tv_nsec * 1e-9;
                }
    } else {
        n = recv(c->fd, rbuf, sizeof rbuf, 0);
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
        lost(c);
        return;
    }
    double read_at = now();
    handle(c, rbuf, (size_t)n, stamp ? stamp : read_at, read_at);
}

static void print_codes(void) {
    printf("{");
    for (int i = 0; i < ncodes; i++)
        printf("%s\"%s%d\": %ld", i ? ", " : "", "", close_code_values[i], close_codes[i]);
    printf("}");
}

static long received_total(long *least) {
    long sum = 0;
    *least = -1;
    for (int i = 0; i < args.count; i++) {
        long r = conns[i].texts - conns[i].base;
        sum += r;
        if (*least < 0 || r < *least) *least = r;
    }
    if (*least < 0) *least = 0;
    return sum;
}

static void check(void) {
    if (!waiting) return;
    long missing = 0, lost_targets = 0;
    for (int i = 0; i < args.count; i++) {
        conn_t *c = &conns[i];
        if (c->state == CLOSED) {
            if (c->texts < targets[i]) lost_targets++;
        } else if (c->texts < targets[i]) {
            missing += targets[i] - c->texts;
        }
    }
    if (missing && now() < deadline) return;
    long least;
    long received = received_total(&least);
    printf("{\"event\": \"%s\", \"ok\": %s, \"missing\": %ld, \"t\": %.6f, \"cpu\": %.6f, \"closed\": %ld, "
           "\"received\": %ld, \"lost_clients\": %ld, \"close_codes\": ",
           waiting == 1 ? "registered" : "reached", (!missing && !lost_targets) ? "true" : "false", missing,
           last_frame, cpu(), closed_count, received, lost_targets);
    print_codes();
    printf("}\n");
    fflush(stdout);
    waiting = 0;
}

/* -- commands (the JSON that benchmarks/clients.py writes) -- */

static int json_string(const char *line, const char *key, char *out, size_t cap) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": \"", key);
    const char *p = strstr(line, pat);
    if (!p) return 0;
    p += strlen(pat);
    size_t i = 0;
    while (*p && *p != '"' && i + 1 < cap) out[i++] = *p++;
    out[i] = 0;
    return 1;
}

static const char *json_value(const char *line, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(line, pat);
    return p ? p + strlen(pat) : NULL;
}

static void command(const char *line) {
    char cmd[32] = "";
    json_string(line, "cmd", cmd, sizeof cmd);
    if (!strcmp(cmd, "register")) {
        char file[4096];
        if (json_string(line, "file", file, sizeof file)) load_payloads(file);
        else {
            char filters[32] = "all";
            json_string(line, "filters", filters, sizeof filters);
            if (strcmp(filters, "all")) die("register %s needs a file", filters);
            payloads = NULL;
        }
        for (int i = 0; i < args.count; i++) {
            targets[i] = conns[i].texts + 1;
            if (conns[i].state == OPEN) send_register(&conns[i]);
        }
        waiting = 1;
        deadline = now() + 120;
    } else if (!strcmp(cmd, "mark")) {
        for (int i = 0; i < args.count; i++) {
            conns[i].base = conns[i].texts;
            conns[i].times.n = conns[i].reads.n = 0;
            conns[i].nids = 0;
        }
        printf("{\"event\": \"marked\", \"cpu\": %.6f, \"t\": %.6f}\n", cpu(), now());
        fflush(stdout);
    } else if (!strcmp(cmd, "expect")) {
        const char *v = json_value(line, "counts");
        if (!v) die("%s", "expect without counts");
        if (*v == '[') {
            v++;
            for (int i = 0; i < args.count; i++) {
                char *end;
                targets[i] = conns[i].base + strtol(v, &end, 10);
                v = end;
                while (*v == ',' || *v == ' ') v++;
            }
        } else {
            long k = strtol(v, NULL, 10);
            for (int i = 0; i < args.count; i++) targets[i] = conns[i].base + k;
        }
        const char *to = json_value(line, "timeout");
        deadline = now() + (to ? strtod(to, NULL) : 60.0);
        waiting = 2;
    } else if (!strcmp(cmd, "report")) {
        long least;
        long received = received_total(&least);
        printf("{\"event\": \"report\", \"received\": %ld, \"least\": %ld, \"cpu\": %.6f, \"t\": %.6f, "
               "\"closed\": %ld, \"close_codes\": ", received, least, cpu(), now(), closed_count);
        print_codes();
        printf("}\n");
        fflush(stdout);
    } else if (!strcmp(cmd, "dump")) {
        char path[4096];
        if (!json_string(line, "path", path, sizeof path)) die("%s", "dump without path");
        FILE *f = fopen(path, "wb");
        if (!f) die("cannot write %s", path);
        fprintf(f, "{\"first\": %d, \"counts\": [", args.first);
        for (int i = 0; i < args.count; i++) fprintf(f, "%s%zu", i ? ", " : "", conns[i].times.n);
        fprintf(f, "], \"ids\": ");
        if (args.timestamps && args.count) {
            fprintf(f, "[");
            for (size_t k = 0; k < conns[0].nids; k++) fprintf(f, "%s\"%s\"", k ? ", " : "", conns[0].ids[k]);
            fprintf(f, "]");
        } else {
            fprintf(f, "null");
        }
        fprintf(f, "}\n");
        for (int i = 0; i < args.count; i++) fwrite(conns[i].times.v, sizeof(double), conns[i].times.n, f);
        for (int i = 0; i < args.count; i++) fwrite(conns[i].reads.v, sizeof(double), conns[i].reads.n, f);
        fclose(f);
        printf("{\"event\": \"dumped\", \"path\": \"%s\"}\n", path);
        fflush(stdout);
    } else {
        printf("{\"event\": \"error\", \"error\": \"unknown command %s\"}\n", cmd);
        fflush(stdout);
    }
    check();
}

static char inbuf[1 << 20];
static size_t inlen;

static int stdin_readable(void) {
    ssize_t n = read(0, inbuf + inlen, sizeof inbuf - inlen - 1);
    if (n <= 0) return 0;
    inlen += (size_t)n;
    inbuf[inlen] = 0;
    char *start = inbuf, *nl;
    while ((nl = memchr(start, '\n', inbuf + inlen - start))) {
        *nl = 0;
        if (nl > start) command(start);
        start = nl + 1;
    }
    inlen -= (size_t)(start - inbuf);
    memmove(inbuf, start, inlen);
    return 1;
}

static void connect_all(void) {
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(args.port);
    inet_pton(AF_INET, args.host, &addr.sin_addr);
    char request[1024];
    int reqlen = snprintf(request, sizeof request,
                          "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                          args.path, args.host, args.port);
    int registering = strcmp(args.filters, "none") != 0;
    long needed = registering ? 2 : 1;
    int started = 0, opening = 0, ready = 0;
    double until = now() + args.connect_timeout;
    struct epoll_event events[1024];
    while (ready < args.count) {
        while (started < args.count && opening < args.parallel) {
            conn_t *c = &conns[started];
            c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
            if (c->fd < 0) die("socket: %s", strerror(errno));
            if (args.rcvbuf) setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &args.rcvbuf, sizeof args.rcvbuf);
            c->index = args.first + started;
            c->state = CONNECTING;
            c->full = args.timestamps && started == 0;
            if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS)
                die("connect: %s", strerror(errno));
            struct epoll_event ev = {EPOLLOUT, {.ptr = c}};
            epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
            started++;
            opening++;
        }
        if (now() > until) die("%s", "not every client was ready in time");
        int n = epoll_wait(epfd, events, 1024, 1000);
        for (int i = 0; i < n; i++) {
            conn_t *c = events[i].data.ptr;
            if (c->state == CONNECTING) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err) die("connect failed: %s", strerror(err));
                sendall(c->fd, (unsigned char *)request, reqlen);
                if (registering) send_register(c);
                c->state = HANDSHAKE;
                struct epoll_event ev = {EPOLLIN, {.ptr = c}};
                epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
                continue;
            }
            long before = c->texts;
            read_conn(c);
            if (before < needed && c->texts >= needed) {
                ready++;
                opening--;
            }
            if (c->state == CLOSED) die("%s", "the server closed a client during the handshake");
        }
    }
    for (int i = 0; i < args.count; i++) {
        conns[i].base = conns[i].texts;
        if (args.timestamps) {
            int on = 1;
            conns[i].timing = 1;
            setsockopt(conns[i].fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
        }
    }
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "--host")) args.host = v, i++;
        else if (!strcmp(a, "--port")) args.port = atoi(v), i++;
        else if (!strcmp(a, "--path")) args.path = v, i++;
        else if (!strcmp(a, "--count")) args.count = atoi(v), i++;
        else if (!strcmp(a, "--first")) args.first = atoi(v), i++;
        else if (!strcmp(a, "--filters")) args.filters = v, i++;
        else if (!strcmp(a, "--register-file")) args.regfile = v, i++;
        else if (!strcmp(a, "--parallel")) args.parallel = atoi(v), i++;
        else if (!strcmp(a, "--rcvbuf")) args.rcvbuf = atoi(v), i++;
        else if (!strcmp(a, "--connect-timeout")) args.connect_timeout = atof(v), i++;
        else if (!strcmp(a, "--timestamps")) args.timestamps = 1;
        else if (!strcmp(a, "--stall")) args.stall = 1;
        else die("unknown argument %s", a);
    }
    if (!args.port || args.count <= 0) die("%s", "--port and --count are required");
    if (strcmp(args.filters, "all") && strcmp(args.filters, "none") && !args.regfile)
        die("--filters %s needs --register-file", args.filters);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)args.count + 64) {
        rl.rlim_cur = (rlim_t)args.count + 64 < rl.rlim_max ? (rlim_t)args.count + 64 : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    srand((unsigned)(now() * 1000) ^ getpid());
    if (args.regfile) load_payloads(args.regfile);
    conns = calloc(args.count, sizeof(conn_t));
    targets = calloc(args.count, sizeof(long));
    epfd = epoll_create1(0);
    connect_all();
    if (args.stall)
        for (int i = 0; i < args.count; i++) epoll_ctl(epfd, EPOLL_CTL_DEL, conns[i].fd, NULL);
    struct epoll_event ev = {EPOLLIN, {.ptr = NULL}};
    epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev);
    printf("{\"event\": \"ready\", \"clients\": %d, \"cpu\": %.6f, \"t\": %.6f}\n", args.count, cpu(), now());
    fflush(stdout);
    struct epoll_event events[1024];
    for (;;) {
        int n = epoll_wait(epfd, events, 1024, waiting ? 200 : 1000);
        for (int i = 0; i < n; i++) {
            conn_t *c = events[i].data.ptr;
            if (!c) {
                if (!stdin_readable()) return 0;
            } else {
                read_conn(c);
            }
        }
        if (waiting) check();
    }
}
