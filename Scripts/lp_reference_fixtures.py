"""Write exact LP reference solutions for the PhysarumLP tests.

Solves seeded random l1-SVM LPs (C = 10 and C = 1) and bipartite matching LPs
with SciPy's HiGHS (scipy.optimize.linprog(method="highs")) and writes them to
Tests/PhysarumLPTests/Fixtures/lp_reference.json.

The LPs are built here independently of the Swift builders, in the variable
and row order the Swift builders document, so the tests also check that order:
  l1-SVM variables: alpha1, alpha2, s (n each), b1, b2, xi, z, l, p, q, r (n each);
  rows: margin (n), (Hu) - s + p = 0 (n), (Hu) + s - q = 0 (n), z + r = 1 (n).
  matching variables: vec(X) row-major (n x m), slack s (m);
  rows: X 1 = 1 (n), X^T 1 + s = 1 (m).
Zero costs are replaced by gamma before solving, as the physarum layer does,
so the stored optimum is the optimum of the LP the layer solves.

Usage: /work/venv/bin/python Scripts/lp_reference_fixtures.py
"""

import json
import pathlib

import numpy as np
from scipy.optimize import linear_sum_assignment, linprog

OUTPUT = pathlib.Path(__file__).resolve().parent.parent / "Tests/PhysarumLPTests/Fixtures/lp_reference.json"


def svm_lp(kernel, labels, penalty, margin_shift=0.001):
    n = len(labels)
    columns, rows = 9 * n + 2, 4 * n
    alpha1, alpha2, s, b1, b2 = 0, n, 2 * n, 3 * n, 3 * n + 1
    xi, z, l, p, q, r = 3 * n + 2, 4 * n + 2, 5 * n + 2, 6 * n + 2, 7 * n + 2, 8 * n + 2
    a = np.zeros((rows, columns))
    b = np.zeros(rows)
    c = np.zeros(columns)
    h = kernel * labels[None, :]
    for i in range(n):
        a[i, alpha1:alpha1 + n] = labels[i] * h[i]
        a[i, alpha2:alpha2 + n] = -labels[i] * h[i]
        a[i, b1], a[i, b2] = labels[i], -labels[i]
        a[i, xi + i], a[i, z + i], a[i, l + i] = 1, -margin_shift, -1
        a[n + i, alpha1:alpha1 + n], a[n + i, alpha2:alpha2 + n] = h[i], -h[i]
        a[n + i, s + i], a[n + i, p + i] = -1, 1
        a[2 * n + i, alpha1:alpha1 + n], a[2 * n + i, alpha2:alpha2 + n] = h[i], -h[i]
        a[2 * n + i, s + i], a[2 * n + i, q + i] = 1, -1
        a[3 * n + i, z + i], a[3 * n + i, r + i] = 1, 1
        b[i], b[3 * n + i] = 1, 1
        c[s + i], c[xi + i], c[z + i] = 1, penalty, 2 * penalty
    return a, b, c


def separable_support_set(rng, n, dimension):
    """n points (half positive), labelled by a random hyperplane through the origin, norms <= 1."""
    normal = rng.standard_normal(dimension)
    points, labels = [], []
    while len(points) < n:
        point = rng.standard_normal(dimension)
        label = 1.0 if point @ normal > 0 else -1.0
        if labels.count(label) < n // 2 + (n % 2 if label > 0 else 0):
            points.append(point)
            labels.append(label)
    points = np.array(points)
    points /= np.linalg.norm(points, axis=1).max()
    return points, np.array(labels)


def solve(a, b, c, gamma):
    perturbed = np.where(c == 0, gamma, c)
    result = linprog(perturbed, A_eq=a, b_eq=b, bounds=(0, None), method="highs")
    assert result.status == 0, result.message
    return result.x, perturbed


def main():
    rng = np.random.default_rng(20261204)
    gamma = 0.1
    n, dimension = 10, 8
    svm_sets = []
    for penalty, count in ((10.0, 20), (1.0, 20)):
        problems = []
        for index in range(count):
            points, labels = separable_support_set(rng, n, dimension)
            kernel = points @ points.T
            a, b, c = svm_lp(kernel, labels, penalty)
            x, perturbed = solve(a, b, c, gamma)
            problem = {
                "kernel": kernel.ravel().tolist(),
                "labels": labels.tolist(),
                "x": x.tolist(),
                "perturbedObjective": float(perturbed @ x),
                "objective": float(c @ x),
            }
            if index == 0:
                problem["A"] = a.ravel().tolist()
                problem["b"] = b.tolist()
                problem["c"] = c.tolist()
            problems.append(problem)
        svm_sets.append({"penalty": penalty, "marginShift": 0.001, "gamma": gamma,
                         "supportCount": n, "problems": problems})

    templates, proposals, matching_gamma = 5, 50, 1e-3
    matchings = []
    for _ in range(10):
        costs = rng.uniform(0, 1, size=(templates, proposals))
        a = np.zeros((templates + proposals, templates * proposals + proposals))
        for i in range(templates):
            a[i, i * proposals:(i + 1) * proposals] = 1
            for j in range(proposals):
                a[templates + j, i * proposals + j] = 1
        for j in range(proposals):
            a[templates + j, templates * proposals + j] = 1
        b = np.ones(templates + proposals)
        c = np.concatenate([costs.ravel(), np.zeros(proposals)])
        x, perturbed = solve(a, b, c, matching_gamma)
        rows, columns = linear_sum_assignment(costs)
        assert np.allclose(x[:templates * proposals].reshape(templates, proposals)[rows, columns], 1, atol=1e-7)
        matchings.append({
            "costs": costs.ravel().tolist(),
            "x": x.tolist(),
            "assignment": columns.tolist(),
            "perturbedObjective": float(perturbed @ x),
        })

    fixture = {
        "generator": "Scripts/lp_reference_fixtures.py, scipy.optimize.linprog(method='highs')",
        "svm": svm_sets,
        "matching": {"templates": templates, "proposals": proposals, "gamma": matching_gamma, "problems": matchings},
    }
    OUTPUT.write_text(json.dumps(fixture, separators=(",", ":")) + "\n")
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size} bytes)")
    for svm in svm_sets:
        trivial = sum(np.allclose(p["x"][:2 * n], 0, atol=1e-9) for p in svm["problems"])
        print(f"C = {svm['penalty']}: {trivial} of {len(svm['problems'])} optima are the trivial classifier u = 0")


if __name__ == "__main__":
    main()
