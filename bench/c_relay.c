/* The yardstick of bench/rtp_relay.sh: the least a relay of UDP pairs can do,
 * so that Sirius's native bridge is measured against it in the same run.
 *
 * PAIRS pairs of UDP sockets on 127.0.0.1: pair k (0-based) is BASE + 4k and
 * BASE + 4k + 2, as Sirius's RTP sockets of a bridged call (its RTCP ports,
 * +1, carry nothing in the benchmark and are not opened). What reaches the
 * first socket leaves by the second towards TO_A; what reaches the second
 * leaves by the first towards TO_B; a port of 0 means "learn it": the far end
 * is the source of the last packet received on that side (comedia).
 *
 * One thread, one level-triggered epoll, one recvfrom and one sendto per
 * packet: what Sirius's relay did before it batched, without its checks
 * (RFC 4733, G.711, counters per stream, rtptimeout), so a fair floor.
 * BATCH=1 in the environment drains a readable socket with recvmmsg and sends
 * what it read with one sendmmsg instead, the same batching Sirius's relay
 * does, to show what batching itself is worth.
 *
 * The packet count is printed on stdout when SIGUSR1 asks (and on SIGTERM),
 * for the script's per-second samples. No third-party code: gcc -O2 c_relay.c.
 *
 *   c_relay BASE PAIRS TO_A_PORT TO_B_PORT
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

struct side {
	int fd;
	struct side *out;        /* the socket packets received here leave by */
	struct sockaddr_in peer; /* where packets leaving by this socket go */
	int learn;
};

static volatile sig_atomic_t stop, asked;
static void on_term(int sig) { (void)sig; stop = 1; }
static void on_usr1(int sig) { (void)sig; asked = 1; }

/* The ports are fixed (the callee's SDP names them), and other programs on
 * the machine take ephemeral ports in the range for a moment: a busy port is
 * tried again for up to thirty seconds before giving up. */
static int bind_udp(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (int tries = 0; fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) < 0; tries++) {
		if (errno != EADDRINUSE || tries == 300) {
			fprintf(stderr, "c_relay: port %d: %s\n", port, strerror(errno));
			exit(1);
		}
		usleep(100000);
	}
	if (fd < 0) {
		perror("socket");
		exit(1);
	}
	return fd;
}

static void far_end(struct side *s, int port)
{
	s->peer.sin_family = AF_INET;
	s->peer.sin_port = htons(port);
	s->peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->learn = port == 0;
}

#define VLEN 16

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: c_relay BASE PAIRS TO_A_PORT TO_B_PORT\n");
		return 2;
	}
	int base = atoi(argv[1]), pairs = atoi(argv[2]);
	int to_a = atoi(argv[3]), to_b = atoi(argv[4]);
	int batch = getenv("BATCH") && atoi(getenv("BATCH"));
	struct side *sides = calloc(2 * (size_t)pairs, sizeof *sides);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	signal(SIGUSR1, on_usr1);
	for (int k = 0; k < pairs; k++) {
		struct side *a = &sides[2 * k], *b = a + 1;
		a->fd = bind_udp(base + 4 * k);
		b->fd = bind_udp(base + 4 * k + 2);
		a->out = b;
		b->out = a;
		/* Packets received on a leave by b towards TO_A, and back. */
		far_end(b, to_a);
		far_end(a, to_b);
		for (struct side *s = a; s <= b; s++) {
			struct epoll_event ev = { .events = EPOLLIN, .data.ptr = s };
			if (epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev) < 0) {
				perror("epoll_ctl");
				return 1;
			}
		}
	}
	fprintf(stderr, "c_relay: %d pairs from %d, batch %d\n", pairs, base, batch);
	struct epoll_event events[256];
	static char bufs[VLEN][2048];
	struct mmsghdr in[VLEN], out[VLEN];
	struct iovec iov[VLEN], oiov[VLEN];
	struct sockaddr_in src[VLEN];
	for (int i = 0; i < VLEN; i++) {
		iov[i] = (struct iovec){ bufs[i], sizeof bufs[i] };
		in[i].msg_hdr = (struct msghdr){ .msg_name = &src[i], .msg_iov = &iov[i], .msg_iovlen = 1 };
	}
	unsigned long long count = 0;
	while (!stop) {
		/* A signal ends the wait at once (epoll_wait is never restarted);
		 * the timeout bounds a signal that comes just before the wait. */
		int n = epoll_wait(ep, events, 256, 100);
		for (int i = 0; i < n; i++) {
			struct side *s = events[i].data.ptr, *o = s->out;
			if (!batch) {
				struct sockaddr_in from;
				socklen_t fl = sizeof from;
				ssize_t len = recvfrom(s->fd, bufs[0], sizeof bufs[0], 0,
						       (struct sockaddr *)&from, &fl);
				if (len < 0)
					continue;
				if (s->learn)
					s->peer = from;
				if (sendto(o->fd, bufs[0], len, 0, (struct sockaddr *)&o->peer,
					   sizeof o->peer) == len)
					count++;
				continue;
			}
			for (int j = 0; j < VLEN; j++)
				in[j].msg_hdr.msg_namelen = sizeof src[j];
			int got = recvmmsg(s->fd, in, VLEN, MSG_DONTWAIT, NULL);
			if (got <= 0)
				continue;
			if (s->learn)
				s->peer = src[got - 1];
			for (int j = 0; j < got; j++) {
				oiov[j] = (struct iovec){ bufs[j], in[j].msg_len };
				out[j].msg_hdr = (struct msghdr){ .msg_name = &o->peer,
								  .msg_namelen = sizeof o->peer,
								  .msg_iov = &oiov[j],
								  .msg_iovlen = 1 };
			}
			int sent = sendmmsg(o->fd, out, got, 0);
			if (sent > 0)
				count += sent;
		}
		if (asked) {
			asked = 0;
			printf("%llu\n", count);
			fflush(stdout);
		}
	}
	printf("%llu\n", count);
	return 0;
}
