/* Connection-rate benchmark (TCP connect / request / response / close).
 *   crr server PORT THREADS [CPU]    accept loop, answers each 64-byte request with 64 bytes
 *   crr client ADDR PORT THREADS SECONDS [CPU [WARMUP_MS]]
 *                                    THREADS parallel connect/request/response/close loops;
 *                                    counts the connections completed in SECONDS after a
 *                                    WARMUP_MS warm-up; prints "<connections> <seconds>
 *                                    <conns/s> <failed> <cpu seconds>" on stdout, the last
 *                                    its own CPU time in those seconds (softirq work run
 *                                    in its context, its packets' path, included)
 *   crr probe ADDR PORT SRC TIMEOUT_MS
 *                                    one request from source address SRC; exit 0 when it
 *                                    is answered within TIMEOUT_MS, 1 when not (a policy
 *                                    that isolates the server drops it)
 * CPU pins the process (all its threads) to that CPU ("any": not pinned), so client
 * and server do not migrate between CPUs from one measurement to the next.
 * The client closes with SO_LINGER 0 (RST): no TIME_WAIT socket is left anywhere, so
 * the ephemeral-port search costs the same in the first and the last measurement and a
 * variant does not pay for the sockets an earlier variant left behind.
 * Blocking sockets and one thread per concurrent connection keep it simple and
 * identical across variants; only the network path between the two differs. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MSG 64
#define MAX_THREADS 256

static struct sockaddr_storage peer;
static socklen_t peer_len;
static atomic_long done_conns;
static atomic_long failed_conns;
static atomic_int stop;
static int listen_fd;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* User + system time of every thread of this process. */
static double cpu_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int full_io(int fd, char *buf, int len, int writing)
{
	int off = 0;
	while (off < len) {
		ssize_t n = writing ? write(fd, buf + off, len - off) : read(fd, buf + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		off += n;
	}
	return 0;
}

static void *server_loop(void *arg)
{
	char buf[MSG];
	(void)arg;
	for (;;) {
		int fd = accept(listen_fd, NULL, NULL);
		if (fd < 0)
			continue;
		if (full_io(fd, buf, MSG, 0) == 0)
			full_io(fd, buf, MSG, 1);
		/* Wait for the client's close (its RST) so no side holds TIME_WAIT. */
		while (read(fd, buf, sizeof(buf)) > 0)
			;
		close(fd);
	}
	return NULL;
}

static void *client_loop(void *arg)
{
	char buf[MSG];
	int one = 1;
	struct linger abort_close = { .l_onoff = 1, .l_linger = 0 };
	(void)arg;
	memset(buf, 'x', sizeof(buf));
	while (!atomic_load(&stop)) {
		int fd = socket(peer.ss_family, SOCK_STREAM, 0);
		if (fd < 0) {
			perror("crr: socket");
			exit(1);
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_close, sizeof(abort_close));
		if (connect(fd, (struct sockaddr *)&peer, peer_len) == 0 && full_io(fd, buf, MSG, 1) == 0 &&
		    full_io(fd, buf, MSG, 0) == 0)
			atomic_fetch_add(&done_conns, 1);
		else
			atomic_fetch_add(&failed_conns, 1);
		close(fd);
	}
	return NULL;
}

static int parse_addr(const char *host, int port, struct sockaddr_storage *out, socklen_t *out_len)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)out;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)out;
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		*out_len = sizeof(*s4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		*out_len = sizeof(*s6);
		return 0;
	}
	return -1;
}

static int parse_int(const char *s, const char *what, int lo, int hi)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*end || v < lo || v > hi) {
		fprintf(stderr, "crr: parse %s \"%s\": need an integer in %d..%d\n", what, s, lo, hi);
		exit(2);
	}
	return (int)v;
}

/* One request from `src` with every step bounded by `timeout_ms`. */
static int probe(const struct sockaddr_storage *src, socklen_t src_len, int timeout_ms)
{
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
	struct linger abort_close = { .l_onoff = 1, .l_linger = 0 };
	char buf[MSG];
	int fd = socket(peer.ss_family, SOCK_STREAM, 0);
	memset(buf, 'x', sizeof(buf));
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_close, sizeof(abort_close)) < 0 ||
	    bind(fd, (const struct sockaddr *)src, src_len) < 0) {
		perror("crr: probe socket");
		exit(2);
	}
	/* connect() gives up after SO_SNDTIMEO, reads after SO_RCVTIMEO */
	return connect(fd, (struct sockaddr *)&peer, peer_len) == 0 && full_io(fd, buf, MSG, 1) == 0 &&
	       full_io(fd, buf, MSG, 0) == 0;
}

/* Pin the calling thread (and the threads it creates later) to one CPU. */
static void pin(const char *arg)
{
	cpu_set_t set;
	if (strcmp(arg, "any") == 0)
		return;
	int cpu = parse_int(arg, "cpu", 0, CPU_SETSIZE - 1);
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0) {
		perror("crr: pin to cpu");
		exit(1);
	}
}

int main(int argc, char **argv)
{
	pthread_t th[MAX_THREADS];
	if ((argc == 4 || argc == 5) && strcmp(argv[1], "server") == 0) {
		int port = parse_int(argv[2], "port", 1, 65535);
		int threads = parse_int(argv[3], "threads", 1, MAX_THREADS);
		if (argc == 5)
			pin(argv[4]);
		struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = in6addr_any };
		int one = 1;
		listen_fd = socket(AF_INET6, SOCK_STREAM, 0); /* dual-stack: v4-mapped too */
		setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(listen_fd, 4096) < 0) {
			perror("crr: listen");
			return 1;
		}
		for (int i = 0; i < threads; i++)
			pthread_create(&th[i], NULL, server_loop, NULL);
		printf("listening %d\n", port);
		fflush(stdout);
		pthread_join(th[0], NULL);
		return 0;
	}
	if (argc >= 6 && argc <= 8 && strcmp(argv[1], "client") == 0) {
		int port = parse_int(argv[3], "port", 1, 65535);
		int threads = parse_int(argv[4], "threads", 1, MAX_THREADS);
		int seconds = parse_int(argv[5], "seconds", 1, 3600);
		int warmup_ms = argc == 8 ? parse_int(argv[7], "warm-up ms", 0, 60000) : 0;
		if (argc >= 7)
			pin(argv[6]);
		if (parse_addr(argv[2], port, &peer, &peer_len) < 0) {
			fprintf(stderr, "crr: parse address \"%s\": not an IPv4 or IPv6 address\n", argv[2]);
			return 2;
		}
		for (int i = 0; i < threads; i++)
			pthread_create(&th[i], NULL, client_loop, NULL);
		/* Connections completed during the warm-up are not counted. */
		usleep(warmup_ms * 1000);
		double t0 = now(), c0 = cpu_seconds();
		long n0 = atomic_load(&done_conns), f0 = atomic_load(&failed_conns);
		while (now() - t0 < seconds)
			usleep(10000);
		double t1 = now(), c1 = cpu_seconds();
		long n = atomic_load(&done_conns) - n0, failed = atomic_load(&failed_conns) - f0;
		atomic_store(&stop, 1);
		for (int i = 0; i < threads; i++)
			pthread_join(th[i], NULL);
		printf("%ld %.3f %.1f %ld %.3f\n", n, t1 - t0, n / (t1 - t0), failed, c1 - c0);
		return 0;
	}
	if (argc == 6 && strcmp(argv[1], "probe") == 0) {
		struct sockaddr_storage src;
		socklen_t src_len;
		int port = parse_int(argv[3], "port", 1, 65535);
		int timeout_ms = parse_int(argv[5], "timeout ms", 1, 60000);
		if (parse_addr(argv[2], port, &peer, &peer_len) < 0 || parse_addr(argv[4], 0, &src, &src_len) < 0 ||
		    src.ss_family != peer.ss_family) {
			fprintf(stderr, "crr: parse addresses \"%s\", \"%s\": need two IPv4 or two IPv6 addresses\n", argv[2], argv[4]);
			return 2;
		}
		return probe(&src, src_len, timeout_ms) ? 0 : 1;
	}
	fprintf(stderr, "usage: crr server PORT THREADS [CPU] | crr client ADDR PORT THREADS SECONDS [CPU [WARMUP_MS]] | "
			"crr probe ADDR PORT SRC TIMEOUT_MS\n");
	return 2;
}
