/* The pod sandbox's process: holds the pod's namespaces open until told to go.
 * Static, so the image needs nothing but this file (FROM scratch). As PID 1 of
 * a pod that shares its process namespace it must also reap orphans. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) {
    (void)sig;
    _exit(0);
}

static void reap(int sig) {
    (void)sig;
    while (waitpid(-1, 0, WNOHANG) > 0) {
    }
}

int main(void) {
    signal(SIGTERM, stop);
    signal(SIGINT, stop);
    signal(SIGCHLD, reap);
    for (;;) pause();
}
