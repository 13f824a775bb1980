#!/usr/bin/env python3
"""PyTorch peers of every op family, for the GPU run (scripts/gpu/run.sh).

Each op is written from the formulas of DESIGN.md the way a PyTorch user
would (log_softmax + gather, autograd for gradients, verl's Python loop for
GAE) and timed twice: eager, and through torch.compile. Shapes come from
`rlhf-kernels bench --list-shapes --size large --json` (bench/shapes.ts), and
rows carry the same op, direction and shape label as the Node benchmark, so
bench/gpu/summary.ts can put them side by side.

Timing: CUDA events around one call, the L2 cache flushed before each call
(a 256 MiB memset), a few warm-up calls, then samples until a per-case time
budget; median and p20/p80 are reported. torch.compile gets one bounded
warm-up (its compile), and any failure is recorded instead of stopping the
run. torch.json is rewritten after every case, so a run stopped by its time
limit still leaves what it measured.
"""
import argparse
import json
import math
import sys
import time
import traceback

GAMMA, LAM, CLIP, VALUE_CLIP, BETA = 0.99, 0.95, 0.2, 0.2, 0.1


def elements(op, s):
    """Elements per call, as the Node suites count them: N*V, B*T, G*K or B."""
    if op == 'tokenLogProbs':
        return s['N'] * s['V']
    if op == 'groupAdvantages':
        return s['G'] * s['K']
    return s['B'] * s.get('T', 1)


def minimal_bytes(op, direction, s, es=4):
    """The fewest bytes an op moves: each input read once, each output written once (bench/README.md)."""
    if op == 'tokenLogProbs':
        nv = s['N'] * s['V'] * es
        return nv + 12 * s['N'] if direction == 'forward' else 2 * nv + 12 * s['N']
    n = s.get('B', 0) * s.get('T', 1)
    return {
        'gae': 17 * n,  # rewards, values (f32), mask (u8) -> advantages, returns
        'whiten': 9 * n,  # x, mask -> out
        'ppoPolicyLoss': 17 * n,  # logprobs, old, advantages, mask -> gradient
        'ppoValueLoss': 17 * n,  # values, old values, returns, mask -> gradient
        'sequenceLogProbs': 5 * n + 4 * s.get('B', 0),  # [B,T] f32 + mask <-> [B]
        'groupAdvantages': 8 * s.get('G', 0) * s.get('K', 0),
        'pairwiseLoss': 16 * s.get('B', 0),  # chosen, rejected -> two gradients
        'dpoLoss': 24 * s.get('B', 0),  # four log-prob vectors -> two gradients
    }[op]


class Timer:
    def __init__(self, torch, device):
        self.torch, self.device = torch, device
        # Larger than any L2 (50 MiB on H100): zeroing it evicts the inputs.
        self.flush = torch.empty(64 * 2**20, dtype=torch.float32, device=device)

    def time(self, fn, budget_s, warmup=3, min_samples=5, max_samples=200):
        torch = self.torch
        for _ in range(warmup):
            fn()
        times = []
        end = time.monotonic() + budget_s
        while len(times) < min_samples or (time.monotonic() < end and len(times) < max_samples):
            self.flush.zero_()
            if self.device == 'cuda':
                start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                stop.record()
                stop.synchronize()
                times.append(start.elapsed_time(stop))
            else:  # a dry run without a GPU
                t0 = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t0) * 1e3)
        times.sort()
        return {'medianMs': quantile(times, 0.5), 'p20Ms': quantile(times, 0.2), 'p80Ms': quantile(times, 0.8),
                'minMs': times[0], 'samples': len(times)}


def quantile(ascending, q):
    """Linear interpolation between order statistics (as bench/measure.ts)."""
    at = q * (len(ascending) - 1)
    lo = math.floor(at)
    hi = min(lo + 1, len(ascending) - 1)
    return ascending[lo] + (ascending[hi] - ascending[lo]) * (at - lo)


# ------------------------------------------------------------------ the ops

def define_ops(torch):
    F = torch.nn.functional

    def token_logprobs(logits, targets):
        # verl / TRL: log_softmax over the vocabulary, then gather the targets.
        return torch.log_softmax(logits.float(), dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)

    def token_logprobs_entropy(logits, targets):
        z = logits.float()
        lse = torch.logsumexp(z, dim=-1)
        entropy = lse - (torch.softmax(z, dim=-1) * z).sum(-1)  # verl's entropy_from_logits
        return z.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - lse, entropy

    def gae(rewards, values, mask):
        # verl's compute_gae_advantage_return: a Python loop over T, masked steps carried over.
        nextvalues, lastgaelam, reversed_adv = 0.0, 0.0, []
        for t in reversed(range(rewards.shape[1])):
            delta = rewards[:, t] + GAMMA * nextvalues - values[:, t]
            gaelam = delta + GAMMA * LAM * lastgaelam
            nextvalues = values[:, t] * mask[:, t] + (1 - mask[:, t]) * nextvalues
            lastgaelam = gaelam * mask[:, t] + (1 - mask[:, t]) * lastgaelam
            reversed_adv.append(lastgaelam)
        advantages = torch.stack(reversed_adv[::-1], dim=1) * mask
        return advantages, (advantages + values) * mask

    def whiten(x, mask):
        count = mask.sum()
        mean = (x * mask).sum() / count
        var = ((x - mean) ** 2 * mask).sum() / (count - 1)
        return (x - mean) * torch.rsqrt(var + 1e-8) * mask

    def group_advantages(scores, K):
        g = scores.view(-1, K)
        return ((g - g.mean(-1, keepdim=True)) / (g.std(-1, keepdim=True) + 1e-6)).view(-1)

    def ppo_policy_loss(lp, old, adv, mask):
        ratio = torch.exp(lp - old)
        unclipped, clipped = -adv * ratio, -adv * torch.clamp(ratio, 1 - CLIP, 1 + CLIP)
        count = mask.sum()
        loss = (torch.maximum(unclipped, clipped) * mask).sum() / count
        clipfrac = ((clipped > unclipped).float() * mask).sum() / count
        d = (old - lp).detach()
        approx_kl = ((torch.exp(d) - d - 1) * mask).sum() / count
        return loss, clipfrac, approx_kl

    def ppo_value_loss(v, old, returns, mask):
        clipped = old + torch.clamp(v - old, -VALUE_CLIP, VALUE_CLIP)
        a, b = (v - returns) ** 2, (clipped - returns) ** 2
        count = mask.sum()
        return 0.5 * (torch.maximum(a, b) * mask).sum() / count, ((b > a).float() * mask).sum() / count

    def pairwise_loss(c, r):
        d = c - r
        return -F.logsigmoid(BETA * d).mean(), (d > 0).float().mean(), d.mean()

    def dpo_loss(pc, pr, rc, rr):
        return pairwise_loss(pc - rc, pr - rr)

    def sequence_logprobs(lp, mask):
        return (lp * mask).sum(-1)

    return locals()


class Case:
    """One op, direction and shape. inputs() makes fresh inputs; `mode` says what a call times:
    'call' f(*args); 'grad' f's first output and its gradient wrt `leaves`;
    'backward' the gradient only, through a graph built once by one f(*args)."""

    def __init__(self, op, direction, shape, f, inputs, mode='call', es=4, label=None, extra_bytes=0):
        self.op, self.direction, self.shape, self.f, self.inputs, self.mode, self.es = op, direction, shape, f, inputs, mode, es
        self.label = label or shape['label']
        self.bytes = minimal_bytes(op, direction, shape, es) + extra_bytes

    def bind(self, torch, fn):
        made = self.inputs()
        if self.mode == 'call':
            return lambda: fn(*made)
        args, leaves, g = made
        if self.mode == 'grad':
            return lambda: torch.autograd.grad(fn(*args)[0], leaves)
        out = fn(*args)
        return lambda: torch.autograd.grad(out, leaves, g, retain_graph=True)


def cases(torch, ops, shapes, device):
    def rand(*size, lo=-1.0, hi=1.0, dtype=torch.float32, grad=False):
        return (torch.rand(*size, device=device) * (hi - lo) + lo).to(dtype).requires_grad_(grad)

    def mask(*size):
        return (torch.rand(*size, device=device) < 0.9).float()

    def ids(n, V):
        return torch.randint(0, V, (n,), device=device)

    out = []
    for s in shapes.get('tokenLogProbs', []):
        N, V = s['N'], s['V']
        dt, es = (torch.bfloat16, 2) if s['dtype'] == 'bfloat16' else (torch.float32, 4)
        out += [
            Case('tokenLogProbs', 'forward', s, ops['token_logprobs'], lambda N=N, V=V, dt=dt: (rand(N, V, lo=-4, hi=4, dtype=dt), ids(N, V)), es=es),
            Case('tokenLogProbs', 'forward', s, ops['token_logprobs_entropy'], lambda N=N, V=V, dt=dt: (rand(N, V, lo=-4, hi=4, dtype=dt), ids(N, V)),
                 es=es, label=s['label'] + ' entropy', extra_bytes=4 * N),
            Case('tokenLogProbs', 'backward', s, ops['token_logprobs'], lambda N=N, V=V, dt=dt: (
                lambda x: ((x, ids(N, V)), x, rand(N)))(rand(N, V, lo=-4, hi=4, dtype=dt, grad=True)), mode='backward', es=es),
        ]
    for s in shapes.get('gae', []):
        B, T = s['B'], s['T']
        out.append(Case('gae', 'forward', s, ops['gae'], lambda B=B, T=T: (rand(B, T), rand(B, T), mask(B, T))))
    for s in shapes.get('whiten', []):
        B, T = s['B'], s['T']
        out.append(Case('whiten', 'forward', s, ops['whiten'], lambda B=B, T=T: (rand(B, T), mask(B, T))))
    for s in shapes.get('groupAdvantages', []):
        G, K = s['G'], s['K']
        out.append(Case('groupAdvantages', 'forward', s, ops['group_advantages'], lambda G=G, K=K: (rand(G * K), K)))
    for s in shapes.get('ppo', []):
        B, T = s['B'], s['T']

        def policy(B=B, T=T):
            lp = rand(B, T, lo=-3, hi=0, grad=True)
            return (lp, lp.detach() + rand(B, T, lo=-0.3, hi=0.3), torch.randn(B, T, device=device), mask(B, T)), lp, None

        def value(B=B, T=T):
            v = rand(B, T, grad=True)
            return (v, rand(B, T), rand(B, T), mask(B, T)), v, None
        out += [Case('ppoPolicyLoss', 'forward+backward', s, ops['ppo_policy_loss'], policy, mode='grad'),
                Case('ppoValueLoss', 'forward+backward', s, ops['ppo_value_loss'], value, mode='grad')]
    for s in shapes.get('sequenceLogProbs', []):
        B, T = s['B'], s['T']

        def seq_backward(B=B, T=T):
            lp = rand(B, T, lo=-3, hi=0, grad=True)
            return (lp, mask(B, T)), lp, rand(B)
        out += [Case('sequenceLogProbs', 'forward', s, ops['sequence_logprobs'], lambda B=B, T=T: (rand(B, T, lo=-3, hi=0), mask(B, T))),
                Case('sequenceLogProbs', 'backward', s, ops['sequence_logprobs'], seq_backward, mode='backward')]
    for s in shapes.get('preference', []):
        B = s['B']

        def pair(B=B):
            c, r = rand(B, lo=-3, hi=3, grad=True), rand(B, lo=-3, hi=3, grad=True)
            return (c, r), (c, r), None

        def dpo(B=B):
            pc, pr = rand(B, lo=-300, hi=-100, grad=True), rand(B, lo=-300, hi=-100, grad=True)
            return (pc, pr, rand(B, lo=-300, hi=-100), rand(B, lo=-300, hi=-100)), (pc, pr), None
        out += [Case('pairwiseLoss', 'forward+backward', s, ops['pairwise_loss'], pair, mode='grad'),
                Case('dpoLoss', 'forward+backward', s, ops['dpo_loss'], dpo, mode='grad')]
    return out


def calibrate(torch, device, timer):
    """Device-to-device copy of 2 GiB (1 GiB read + 1 GiB written per copy), best of 10."""
    n = 2**28
    src, dst = torch.ones(n, device=device), torch.empty(n, device=device)
    t = timer.time(lambda: dst.copy_(src), 0.5, warmup=2, min_samples=10, max_samples=10)
    del src, dst
    return {'method': 'copy', 'bytes': 8 * n, 'gbPerS': 8 * n / (t['minMs'] / 1e3) / 1e9}


def first_line(e):
    lines = str(e).strip().splitlines()
    return lines[0] if lines else ''


def why_not(provider, op, s, left, args, torch):
    """Why a provider does not run this case, or None."""
    if left < 5:
        return 'time budget spent'
    if provider != 'torch-compile':
        return None
    if not hasattr(torch, 'compile'):
        return f'torch {torch.__version__} has no torch.compile'
    if left < args.compile_min_left:
        return f'under {args.compile_min_left:.0f} s left: no new compile'
    if op == 'gae' and s['T'] > 512:
        return f'compiling a {s["T"]}-step Python loop unrolls it: not attempted above T=512'
    return None


def run_provider(torch, timer, case, provider, args, deadline):
    """Times one provider on a case, on fresh inputs; they and its graphs are freed on return."""
    fn = torch.compile(case.f, dynamic=False) if provider == 'torch-compile' else case.f
    start = time.monotonic()
    call = case.bind(torch, fn)
    call()  # eager: first-call allocations; compile: the compile (bounded: one call)
    if args.device == 'cuda':
        torch.cuda.synchronize()
    first = time.monotonic() - start
    t = timer.time(call, min(args.case_time, max(0.05, (deadline - time.monotonic()) / 4)))
    if provider == 'torch-compile':
        t['compileS'] = round(first, 2)
    return t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--shapes', required=True, help='JSON from rlhf-kernels bench --list-shapes --json')
    ap.add_argument('--out', required=True)
    ap.add_argument('--budget', type=float, default=150, help='seconds for everything')
    ap.add_argument('--case-time', type=float, default=0.3, help='seconds of samples per case and provider')
    ap.add_argument('--compile-min-left', type=float, default=25, help='no new torch.compile with fewer seconds left')
    ap.add_argument('--device', default='cuda', help='cuda, or cpu for a dry run of this script')
    args = ap.parse_args()
    deadline = time.monotonic() + args.budget
    doc = {'tool': 'torch_peers', 'results': [], 'skipped': []}

    def save():
        with open(args.out, 'w') as f:
            json.dump(doc, f, indent=1)

    try:
        import torch
    except Exception as e:  # no torch here: say so, and let the other steps go on
        doc['error'] = f'torch unavailable: {e}'
        save()
        print(doc['error'])
        return 0
    doc['torch'] = torch.__version__
    if args.device == 'cuda' and not torch.cuda.is_available():
        doc['error'] = 'torch.cuda.is_available() is False'
        save()
        print(doc['error'])
        return 0
    doc['device'] = torch.cuda.get_device_name() if args.device == 'cuda' else 'cpu (dry run)'
    with open(args.shapes) as f:
        shapes = json.load(f)['shapes']
    timer = Timer(torch, args.device)
    try:
        doc['calibration'] = calibrate(torch, args.device, timer)
    except Exception as e:
        doc['calibration'] = {'error': str(e).split('\n')[0]}
    save()
    ops = define_ops(torch)
    if hasattr(torch, 'compile'):
        # Every shape of an op is one more compiled graph of the same function.
        config = torch._dynamo.config
        for name in ('recompile_limit', 'cache_size_limit'):  # renamed in torch 2.6
            if hasattr(config, name):
                setattr(config, name, 64)
                break
    # Eager first for every case (seconds in all), then torch.compile, whose
    # compiles take tens of seconds each: the first shape of every op before
    # the second, so the budget covers as many ops as it can.
    all_cases = cases(torch, ops, shapes, args.device)
    seen = {}
    for case in all_cases:
        case.rank = seen[case.op, case.direction] = seen.get((case.op, case.direction), -1) + 1
    plan = [(c, 'torch-eager') for c in all_cases] + [(c, 'torch-compile') for c in sorted(all_cases, key=lambda c: c.rank)]
    for case, provider in plan:
        base = {'op': case.op, 'direction': case.direction, 'shape': case.label, 'provider': provider}
        reason = why_not(provider, case.op, case.shape, deadline - time.monotonic(), args, torch)
        if reason:
            doc['skipped'].append({**base, 'reason': reason})
            continue
        try:
            t = run_provider(torch, timer, case, provider, args, deadline)
            row = {**base, 'elements': elements(case.op, case.shape), 'bytes': case.bytes, **t}
            row['gbPerS'] = row['bytes'] / (t['medianMs'] / 1e3) / 1e9
            doc['results'].append(row)
        except Exception as e:
            doc['skipped'].append({**base, 'reason': f'{type(e).__name__}: {first_line(e)}'[:300]})
        if args.device == 'cuda':
            torch.cuda.empty_cache()
        save()
    save()
    print(f'torch_peers: {len(doc["results"])} rows, {len(doc["skipped"])} skipped -> {args.out}')
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except Exception:
        traceback.print_exc()
        sys.exit(1)
