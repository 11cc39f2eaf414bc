#include <mpi.h>
#include <stdint.h>

/* Open MPI defines its handles and special values as macros over addresses of globals, which
   Swift cannot import; these functions return them. */
static inline MPI_Comm kumo_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm kumo_mpi_comm_null(void) { return MPI_COMM_NULL; }
static inline MPI_Datatype kumo_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype kumo_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype kumo_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Op kumo_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op kumo_mpi_max(void) { return MPI_MAX; }
static inline MPI_Op kumo_mpi_min(void) { return MPI_MIN; }
static inline MPI_Request kumo_mpi_request_null(void) { return MPI_REQUEST_NULL; }
static inline void *kumo_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Status *kumo_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline int kumo_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline int kumo_mpi_success(void) { return MPI_SUCCESS; }
