#ifndef COPENBLAS_SHIM_H
#define COPENBLAS_SHIM_H

#include <cblas.h>

// LAPACK routines that libopenblas exports with the Fortran calling convention.
// Debian's libopenblas-dev ships no lapack.h on the openblas-pthread include path,
// so the few routines this package uses are declared here.

/// Cholesky factorisation of a symmetric positive definite matrix (column-major).
void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info);
/// Solves A X = B with the Cholesky factor from dpotrf_.
void dpotrs_(const char *uplo, const int *n, const int *nrhs, const double *a,
             const int *lda, double *b, const int *ldb, int *info);
/// Single-precision Cholesky factorisation.
void spotrf_(const char *uplo, const int *n, float *a, const int *lda, int *info);
/// Single-precision solve with the factor from spotrf_.
void spotrs_(const char *uplo, const int *n, const int *nrhs, const float *a,
             const int *lda, float *b, const int *ldb, int *info);
/// Batched-friendly triangular solve of a matrix right-hand side (double).
void dtrtrs_(const char *uplo, const char *trans, const char *diag, const int *n,
             const int *nrhs, const double *a, const int *lda, double *b,
             const int *ldb, int *info);

#endif
