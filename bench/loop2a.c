/* Seed 004 (004_41db9c39b506eeca.txt) program 2A in C: connect, accept, close the server side first, close the client. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 5000;
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {0};
  socklen_t len = sizeof(a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 16) || getsockname(l, (struct sockaddr *)&a, &len)) {
    perror("listener");
    return 1;
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < n; i++) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, (struct sockaddr *)&a, sizeof(a))) {
      perror("connect");
      return 1;
    }
    int s = accept(l, NULL, NULL);
    if (s < 0) {
      perror("accept");
      return 1;
    }
    close(s);
    close(c);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("{\"loop2a\": %.1f}\n", ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / n);
  return 0;
}
