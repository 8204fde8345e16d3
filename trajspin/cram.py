"""Chebyshev rational approximation (CRAM) of the matrix exponential.

exp(h A) y for a generator A whose eigenvalues lie on the non-positive real
axis is approximated in the incomplete partial-fraction (IPF) form

    y <- y + 2 Re[ alpha_j (h A - theta_j)^{-1} y ],   j = 1 .. 8,
    exp(h A) y ~= alpha_0 y,

with the order-16 poles theta_j and residues alpha_j of M. Pusa, "Higher-order
Chebyshev rational approximation method and application to burnup equations",
Nucl. Sci. Eng. 182, 297 (2016), Table (IPF form, order 16).  The uniform error
of the scalar approximation on (-inf, 0] is about 2e-16, independent of the
step h, which is what makes one rational step per output interval of a stiff,
log-spaced time grid exact to rounding.  CRAM was built for decay cascades
whose generator is triangular and highly non-normal; the sector cascade of the
master equation has the same structure.
"""
import numpy as np

__all__ = ["CRAM16_ALPHA", "CRAM16_THETA", "CRAM16_ALPHA0", "CRAM16_RESIDUES"]

CRAM16_ALPHA = np.array([
    +5.464930576870210e+3 - 3.797983575308356e+4j,
    +9.045112476907548e+1 - 1.115537522430261e+3j,
    +2.344818070467641e+2 - 4.228020157070496e+2j,
    +9.453304067358312e+1 - 2.951294291446048e+2j,
    +7.283792954673409e+2 - 1.205646080220011e+5j,
    +3.648229059594851e+1 - 1.155509621409682e+2j,
    +2.547321630156819e+1 - 2.639500283021502e+1j,
    +2.394538338734709e+1 - 5.650522971778156e+0j])

CRAM16_THETA = np.array([
    +3.509103608414918 + 8.436198985884374j,
    +5.948152268951177 + 3.587457362018322j,
    -5.264971343442647 + 16.22022147316793j,
    +1.419375897185666 + 10.92536348449672j,
    +6.416177699099435 + 1.194122393370139j,
    +4.993174737717997 + 5.996881713603942j,
    -1.413928462488886 + 13.49772569889275j,
    -10.84391707869699 + 19.27744616718165j])

CRAM16_ALPHA0 = 2.124853710495224e-16


def _partial_fraction_residues(alpha, theta, alpha0):
    """Residues r_j of the same rational function in partial fractions,

        r(x) = alpha_0 + 2 Re sum_j r_j / (x - theta_j)      (x real),

    from the IPF product r(x) = alpha_0 prod_k (1 + alpha_k/(x - theta_k) + conj(alpha_k)/(x - conj(theta_k))):
    r_j = alpha_0 alpha_j prod_{k != j} f_k(theta_j).  The partial-fraction form lets all
    poles be solved in one sweep; its scalar error on (-inf, 0] is 4.5e-14 (tests/test_cram.py).
    """
    res = np.empty_like(alpha)
    for j in range(alpha.size):
        f = [1 + alpha[k] / (theta[j] - theta[k]) + np.conj(alpha[k]) / (theta[j] - np.conj(theta[k]))
             for k in range(alpha.size) if k != j]
        res[j] = alpha0 * alpha[j] * np.prod(f)
    return res


CRAM16_RESIDUES = _partial_fraction_residues(CRAM16_ALPHA, CRAM16_THETA, CRAM16_ALPHA0)
