/* The test image's only program: each mode shows one thing only a real kubelet
 * and runtime can show, and reports it in the termination message, so the
 * result travels the kubelet's path into the Pod's status.
 *
 *   probe exit CODE MESSAGE   identity report + MESSAGE, then exit CODE
 *   probe alloc MIB           allocate and touch MIB MiB (to meet a memory limit)
 *   probe connect IP PORT     TCP connect; exit 0 when it connects, 1 if not
 *   probe sleep SECONDS       sleep, then exit 0 (143 at once on SIGTERM)
 *
 * IP is numeric: a static glibc cannot use NSS, and there is no DNS here. An
 * empty IP or PORT means $KUBERNETES_SERVICE_HOST / $KUBERNETES_SERVICE_PORT. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *termination_path(void) {
    const char *p = getenv("TERMINATION_LOG");
    return p && *p ? p : "/dev/termination-log";
}

static void report(const char *text) {
    FILE *f = fopen(termination_path(), "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    puts(text);
    fflush(stdout);
}

/* One "key: value" line of /proc/self/status, e.g. CapEff or Seccomp. */
static void status_field(const char *key, char *out, size_t n) {
    char line[256];
    size_t klen = strlen(key);
    snprintf(out, n, "?");
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            char *v = line + klen + 1;
            while (*v == ' ' || *v == '\t') v++;
            v[strcspn(v, "\n")] = 0;
            snprintf(out, n, "%s", v);
            break;
        }
    }
    fclose(f);
}

static int mode_exit(int code, const char *message) {
    char caps[64], seccomp[16], nnp[16], msg[1024];
    status_field("CapEff", caps, sizeof caps);
    status_field("Seccomp", seccomp, sizeof seccomp);
    status_field("NoNewPrivs", nnp, sizeof nnp);
    /* A read-only root refuses the create with EROFS. */
    int fd = open("/probe-write-test", O_WRONLY | O_CREAT, 0600);
    const char *root = fd >= 0 ? "rw" : (errno == EROFS ? "ro" : strerror(errno));
    if (fd >= 0) close(fd);
    snprintf(msg, sizeof msg, "uid=%d gid=%d root=%s capeff=%s seccomp=%s nnp=%s %s",
             (int)getuid(), (int)getgid(), root, caps, seccomp, nnp, message);
    report(msg);
    return code;
}

static int mode_alloc(long mib) {
    long page = sysconf(_SC_PAGESIZE);
    for (long i = 0; i < mib; i++) {
        char *p = malloc(1 << 20);
        if (!p) {
            report("malloc failed");
            return 2;
        }
        /* Touch every page: untouched memory is never charged to the cgroup. */
        for (long off = 0; off < (1 << 20); off += page) p[off] = 1;
    }
    char msg[64];
    snprintf(msg, sizeof msg, "allocated %ld MiB", mib);
    report(msg);
    return 0;
}

static int mode_connect(const char *ip, const char *port) {
    if (!*ip) ip = getenv("KUBERNETES_SERVICE_HOST") ? getenv("KUBERNETES_SERVICE_HOST") : "";
    if (!*port) port = getenv("KUBERNETES_SERVICE_PORT") ? getenv("KUBERNETES_SERVICE_PORT") : "";
    char msg[256];
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(port))};
    if (inet_pton(AF_INET, ip, &addr.sin_addr) != 1) {
        snprintf(msg, sizeof msg, "not a numeric IPv4 address: '%s'", ip);
        report(msg);
        return 2;
    }
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(s, (struct sockaddr *)&addr, sizeof addr) != 0) {
        snprintf(msg, sizeof msg, "connect %s:%s failed: %s", ip, port, strerror(errno));
        report(msg);
        return 1;
    }
    close(s);
    snprintf(msg, sizeof msg, "connected to %s:%s", ip, port);
    report(msg);
    return 0;
}

static void on_term(int sig) {
    (void)sig;
    _exit(143);
}

int main(int argc, char **argv) {
    if (argc >= 4 && strcmp(argv[1], "exit") == 0) return mode_exit(atoi(argv[2]), argv[3]);
    if (argc >= 3 && strcmp(argv[1], "alloc") == 0) return mode_alloc(atol(argv[2]));
    if (argc >= 4 && strcmp(argv[1], "connect") == 0) return mode_connect(argv[2], argv[3]);
    if (argc >= 3 && strcmp(argv[1], "sleep") == 0) {
        /* PID 1 of its container: the kernel ignores SIGTERM unless handled, and a
         * deleted pod would then hold the node for its whole grace period. */
        signal(SIGTERM, on_term);
        sleep((unsigned)atoi(argv[2]));
        return 0;
    }
    fprintf(stderr, "usage: probe {exit CODE MESSAGE|alloc MIB|connect IP PORT|sleep SECONDS}\n");
    return 2;
}
