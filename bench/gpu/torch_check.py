#!/usr/bin/env python3
"""Checks the PyTorch peers of torch_peers.py against plain-Python loops of
DESIGN.md's formulas, in float64 on the CPU, on small random inputs (the
peers are only worth comparing with if they compute the same thing).
Prints one line per op; exits 1 on a mismatch, 0 without torch (nothing to check).
"""
import math
import random
import sys

from torch_peers import BETA, CLIP, GAMMA, LAM, VALUE_CLIP, define_ops


def close(a, b, tol=1e-9):
    a, b = list(a), list(b)
    return len(a) == len(b) and all(abs(x - y) <= tol * (1 + abs(y)) for x, y in zip(a, b))


def main():
    try:
        import torch
    except ImportError as e:
        print(f'torch_check: skipped ({e})')
        return 0
    torch.set_default_dtype(torch.float64)
    ops, rng, failed = define_ops(torch), random.Random(7), []

    def check(name, ok):
        print(f'torch_check: {"ok  " if ok else "FAIL"} {name}')
        if not ok:
            failed.append(name)

    def t(values, grad=False):
        return torch.tensor(values, dtype=torch.float64, requires_grad=grad)

    # The log-prob peers upcast logits with .float() as verl does: float32 accuracy there.
    f32 = 1e-6
    N, V, B, T = 5, 7, 3, 9
    z = [[rng.uniform(-4, 4) for _ in range(V)] for _ in range(N)]
    y = [rng.randrange(V) for _ in range(N)]
    lse = [math.log(sum(math.exp(v) for v in row)) for row in z]
    lp = ops['token_logprobs'](t(z), torch.tensor(y))
    check('tokenLogProbs', close(lp.tolist(), [z[i][y[i]] - lse[i] for i in range(N)], f32))
    _, H = ops['token_logprobs_entropy'](t(z), torch.tensor(y))
    check('tokenLogProbs entropy', close(H.tolist(), [lse[i] - sum(math.exp(v - lse[i]) * v for v in z[i]) for i in range(N)], f32))
    x = t(z, grad=True)
    g = [rng.uniform(-1, 1) for _ in range(N)]
    (dx,) = torch.autograd.grad(ops['token_logprobs'](x, torch.tensor(y)), x, t(g))
    want = [[g[i] * ((j == y[i]) - math.exp(z[i][j] - lse[i])) for j in range(V)] for i in range(N)]
    check('tokenLogProbs backward', all(close(dx[i].tolist(), want[i], f32) for i in range(N)))

    r = [[rng.uniform(-1, 1) for _ in range(T)] for _ in range(B)]
    v = [[rng.uniform(-1, 1) for _ in range(T)] for _ in range(B)]
    m = [[float(rng.random() < 0.7) for _ in range(T)] for _ in range(B)]
    adv, ret = ops['gae'](t(r), t(v), t(m))
    for b in range(B):  # masked steps are transparent: the recursion skips them
        a_next, v_next, want_a, want_r = 0.0, 0.0, [0.0] * T, [0.0] * T
        for k in reversed(range(T)):
            if m[b][k]:
                a_next = r[b][k] + GAMMA * v_next - v[b][k] + GAMMA * LAM * a_next
                v_next = v[b][k]
                want_a[k], want_r[k] = a_next, a_next + v[b][k]
        check(f'gae row {b}', close(adv[b].tolist(), want_a) and close(ret[b].tolist(), want_r))

    flat, fm = [x for row in r for x in row], [x for row in m for x in row]
    n = sum(fm)
    mean = sum(a * w for a, w in zip(flat, fm)) / n
    var = sum((a - mean) ** 2 * w for a, w in zip(flat, fm)) / (n - 1)
    check('whiten', close(ops['whiten'](t(flat), t(fm)).tolist(), [(a - mean) / math.sqrt(var + 1e-8) * w for a, w in zip(flat, fm)]))
    scores = [rng.uniform(0, 1) for _ in range(12)]
    want = []
    for k in range(0, 12, 4):
        grp = scores[k:k + 4]
        mu = sum(grp) / 4
        sd = math.sqrt(sum((s - mu) ** 2 for s in grp) / 3)
        want += [(s - mu) / (sd + 1e-6) for s in grp]
    check('groupAdvantages grpo', close(ops['group_advantages'](t(scores), 4).tolist(), want))

    new = [rng.uniform(-3, 0) for _ in range(B * T)]
    old = [a + rng.uniform(-0.3, 0.3) for a in new]
    A = [rng.gauss(0, 1) for _ in range(B * T)]
    lpt = t(new, grad=True)
    loss, clipfrac, _ = ops['ppo_policy_loss'](lpt, t(old), t(A), t(fm))
    (dlp,) = torch.autograd.grad(loss, lpt)
    ratio = [math.exp(a - o) for a, o in zip(new, old)]
    un = [-a * q for a, q in zip(A, ratio)]
    cl = [-a * min(max(q, 1 - CLIP), 1 + CLIP) for a, q in zip(A, ratio)]
    check('ppoPolicyLoss', close([loss.item()], [sum(max(u, c) * w for u, c, w in zip(un, cl, fm)) / n])
          and close([clipfrac.item()], [sum((c > u) * w for u, c, w in zip(un, cl, fm)) / n])
          and close(dlp.tolist(), [(u if u >= c else 0.0) * w / n for u, c, w in zip(un, cl, fm)]))
    ret = [rng.uniform(-1, 1) for _ in range(B * T)]
    vl, _ = ops['ppo_value_loss'](t(new), t(old), t(ret), t(fm))
    want = sum(0.5 * max((a - R) ** 2, (o + min(max(a - o, -VALUE_CLIP), VALUE_CLIP) - R) ** 2) * w
               for a, o, R, w in zip(new, old, ret, fm)) / n
    check('ppoValueLoss', close([vl.item()], [want]))

    c, rj = [rng.gauss(0, 2) for _ in range(B)], [rng.gauss(0, 2) for _ in range(B)]
    ct, rt = t(c, grad=True), t(rj, grad=True)
    loss, acc, margin = ops['pairwise_loss'](ct, rt)
    dc, dr = torch.autograd.grad(loss, (ct, rt))
    xs = [BETA * (a - b) for a, b in zip(c, rj)]
    check('pairwiseLoss', close([loss.item()], [sum(math.log1p(math.exp(-x)) for x in xs) / B])
          and close(dc.tolist(), [-BETA / (1 + math.exp(x)) / B for x in xs]) and close(dr.tolist(), [BETA / (1 + math.exp(x)) / B for x in xs])
          and close([acc.item()], [sum(a > b for a, b in zip(c, rj)) / B], f32)  # (d > 0).float() is float32
          and close([margin.item()], [sum(a - b for a, b in zip(c, rj)) / B]))
    rc, rr = [rng.gauss(0, 2) for _ in range(B)], [rng.gauss(0, 2) for _ in range(B)]
    dpo, _, _ = ops['dpo_loss'](t(c), t(rj), t(rc), t(rr))
    check('dpoLoss', close([dpo.item()], [sum(math.log1p(math.exp(-BETA * ((a - e) - (b - f)))) for a, b, e, f in zip(c, rj, rc, rr)) / B]))
    check('sequenceLogProbs', close(ops['sequence_logprobs'](t(r), t(m)).tolist(), [sum(a * w for a, w in zip(r[b], m[b])) for b in range(B)]))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
