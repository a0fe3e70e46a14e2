/* Connection-rate benchmark (TCP connect / request / response / close).
 *   crr server PORT THREADS          accept loop, answers each 64-byte request with 64 bytes
 *   crr client ADDR PORT THREADS SECONDS
 *                                    THREADS parallel connect/request/response/close loops;
 *                                    prints "<connections> <seconds> <conns/s>" on stdout
 * Blocking sockets and one thread per concurrent connection keep it simple and
 * identical across variants; only the network path between the two differs. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
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
		/* Wait for the client's close so the client side holds TIME_WAIT. */
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
	(void)arg;
	memset(buf, 'x', sizeof(buf));
	while (!atomic_load(&stop)) {
		int fd = socket(peer.ss_family, SOCK_STREAM, 0);
		if (fd < 0) {
			perror("crr: socket");
			exit(1);
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(fd, (struct sockaddr *)&peer, peer_len) == 0 && full_io(fd, buf, MSG, 1) == 0 &&
		    full_io(fd, buf, MSG, 0) == 0)
			atomic_fetch_add(&done_conns, 1);
		else
			atomic_fetch_add(&failed_conns, 1);
		close(fd);
	}
	return NULL;
}

static int parse_addr(const char *host, int port)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&peer;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&peer;
	memset(&peer, 0, sizeof(peer));
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		peer_len = sizeof(*s4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		peer_len = sizeof(*s6);
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

int main(int argc, char **argv)
{
	pthread_t th[MAX_THREADS];
	if (argc == 4 && strcmp(argv[1], "server") == 0) {
		int port = parse_int(argv[2], "port", 1, 65535);
		int threads = parse_int(argv[3], "threads", 1, MAX_THREADS);
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
	if (argc == 6 && strcmp(argv[1], "client") == 0) {
		int port = parse_int(argv[3], "port", 1, 65535);
		int threads = parse_int(argv[4], "threads", 1, MAX_THREADS);
		int seconds = parse_int(argv[5], "seconds", 1, 3600);
		if (parse_addr(argv[2], port) < 0) {
			fprintf(stderr, "crr: parse address \"%s\": not an IPv4 or IPv6 address\n", argv[2]);
			return 2;
		}
		double t0 = now();
		for (int i = 0; i < threads; i++)
			pthread_create(&th[i], NULL, client_loop, NULL);
		while (now() - t0 < seconds)
			usleep(10000);
		atomic_store(&stop, 1);
		double t1 = now();
		for (int i = 0; i < threads; i++)
			pthread_join(th[i], NULL);
		long n = atomic_load(&done_conns);
		printf("%ld %.3f %.1f %ld\n", n, t1 - t0, n / (t1 - t0), atomic_load(&failed_conns));
		return 0;
	}
	fprintf(stderr, "usage: crr server PORT THREADS | crr client ADDR PORT THREADS SECONDS\n");
	return 2;
}
