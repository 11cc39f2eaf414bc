/* Open MPI's own numbers for the calls `kumo bench comm` times: in-place MPI_Allreduce,
   MPI_Iallreduce + MPI_Wait and MPI_Allgather on fp32 buffers, same sizes, same output format.
   Usage: mpirun -np N comm_peer MIN_MIB MAX_MIB ITERATIONS */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static const char *names[3] = {"allreduce", "allreduce_nonblocking", "allgather"};

/* One call of operation `op` on `count` floats (all-gather: `count` floats gathered in total). */
static void call(int op, const float *in, float *out, int count, int size) {
    if (op == 0) {
        MPI_Allreduce(MPI_IN_PLACE, out, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    } else if (op == 1) {
        MPI_Request req;
        MPI_Iallreduce(MPI_IN_PLACE, out, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &req);
        MPI_Wait(&req, MPI_STATUS_IGNORE);
    } else {
        MPI_Allgather(in, count / size, MPI_FLOAT, out, count / size, MPI_FLOAT, MPI_COMM_WORLD);
    }
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int min_mib = argc > 1 ? atoi(argv[1]) : 1, max_mib = argc > 2 ? atoi(argv[2]) : 64;
    int iters = argc > 3 ? atoi(argv[3]) : 10;
    for (int mib = min_mib; mib <= max_mib; mib *= 2) {
        size_t bytes = (size_t)mib << 20;
        int count = (int)(bytes / 4);
        float *in = malloc(bytes), *out = calloc(count, 4);
        for (int i = 0; i < count; i++) in[i] = 1;
        for (int op = 0; op < 3; op++) {
            double factor = op < 2 ? 2.0 * (size - 1) / size : (double)(size - 1) / size;
            for (int i = 0; i < 2; i++) call(op, in, out, count, size);
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = MPI_Wtime();
            for (int i = 0; i < iters; i++) call(op, in, out, count, size);
            double seconds = (MPI_Wtime() - t0) / iters;
            MPI_Allreduce(MPI_IN_PLACE, &seconds, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
            if (rank == 0)
                printf("{\"impl\":\"openmpi\",\"op\":\"%s\",\"bytes\":%zu,\"ranks\":%d,\"seconds\":%.9g,"
                       "\"busbw_gbps\":%.9g}\n",
                       names[op], bytes, size, seconds, bytes / seconds * factor / 1e9);
        }
        free(in);
        free(out);
    }
    MPI_Finalize();
    return 0;
}
