#!/usr/bin/python3
"""Print lib/nn/vmath.h's gelu_grad_tab: GELU'(x) = 0.5 + sign(x) g(|x|),
g(u) = erf(u / sqrt 2) / 2 + u exp(-u^2 / 2) / sqrt(2 pi), as a degree-7
polynomial in t = u - c_k on each of 8 intervals of [0, 6.3), 0.7875
wide, centred at c_k: least squares on 64 Chebyshev nodes of each
interval, in double, then rounded to float.  Past 6.3, g is within 6e-9
of 0.5.  Prints the table and the largest error of its float evaluation
(Horner, as vmath.h does it) against g on a grid of [0, 8].

    /usr/bin/python3 tools/gen_gelu_grad_tab.py
"""
import math

import numpy as np

U, NINT, DEG, NODES = 6.3, 8, 7, 64


def g(u):
    return 0.5 * math.erf(u / math.sqrt(2)) + u * math.exp(-u * u / 2) / math.sqrt(2 * math.pi)


def main():
    w = U / NINT
    cols = []
    for k in range(NINT):
        c = float(np.float32((k + 0.5) * w))
        xs = np.array([c + 0.5 * w * math.cos(math.pi * (i + 0.5) / NODES) for i in range(NODES)])
        p = np.polynomial.polynomial.polyfit(xs - c, [g(x) for x in xs], DEG)
        cols.append([c] + [float(np.float32(v)) for v in p])
    f32 = np.float32
    inv_w = f32(1 / w)
    err = 0.0
    for u in np.linspace(0, 8, 80001, dtype=np.float32):
        uc = min(u, f32(U))
        k = min(int(f32(uc * inv_w)), NINT - 1)
        t = f32(uc - f32(cols[k][0]))
        h = f32(cols[k][DEG + 1])
        for d in range(DEG, 0, -1):
            h = f32(float(h) * float(t) + cols[k][d])  # one rounding, as fmaf
        h = h if u < f32(U) else f32(0.5)
        err = max(err, abs(float(h) - g(float(u))))
    print("/* max |error| of the float evaluation on [0, 8]: %.2e */" % err)
    print("static const float gelu_grad_tab[%d][8] __attribute__((aligned(32))) = {" % (DEG + 2))
    for r in range(DEG + 2):
        print("\t{ " + ", ".join("%.9g" % cols[k][r] + ("f" if "." in "%.9g" % cols[k][r] or "e" in "%.9g" % cols[k][r] else ".0f") for k in range(NINT)) + " },")
    print("};")
    print("/* 1 / width: %.9g */" % inv_w)


if __name__ == "__main__":
    main()
