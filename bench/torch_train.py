#!/usr/bin/env python3
"""torch_train.py: the PyTorch CPU peer of `selfsup bench train`.

Times whole training steps (forward, backward, SGD update) of the same
ResNet backbones as selfsup's models registry (models/resnet.go) plus a
10-class linear head, on random images N(0, 1) [batch, 3, size, size] and
random labels, exactly as bench.Train does in Go: SGD with momentum 0.9,
weight decay 5e-4 on weights of rank >= 2 only (conv kernels and the fc
matrix, like train.SGD), learning rate 1e-3, softmax cross-entropy.

    python bench/torch_train.py --arch resnet18c --batch 64 --threads 2 \
        --warmup 2 --steps 6 --memory-format channels_last [--autocast bf16] --json

prints one JSON object on the last stdout line (images_per_sec,
step_seconds, peak_rss_mb, import_rss_mb, torch_version, threads,
memory_format, autocast, ...); progress goes to stderr. --autocast bf16
runs the forward pass and the loss under torch.autocast("cpu",
dtype=torch.bfloat16), PyTorch's mixed precision (bfloat16 convolutions
on AMX or AVX512-BF16 where the CPU has them; weights, gradients and the
update stay float32). peak_rss_mb is the process's
high-water mark (getrusage ru_maxrss); import_rss_mb is that mark after
importing torch, before building the network (torch's own libraries).

    python bench/torch_train.py --check-params --arch resnet18c,resnet50

prints, per architecture, one JSON line describing the network built
(learnable parameter and buffer counts, parameter shapes, and every
convolution with its input size), which the Go tests compare with the
models.Spec of the same name.

Architectures (He et al., "Deep Residual Learning for Image Recognition",
CVPR 2016): resnet18 / resnet34 (basic blocks) and resnet50 (bottlenecks,
stride on the 3x3 conv as in torchvision "v1.5") with the 7x7 stride-2 stem
and 3x3 stride-2 max-pool; resnet18c (64-512 channels, 2 basic blocks per
stage) and resnet20c (16/32/64 channels, 3 basic blocks per stage) with a
3x3 stride-1 stem and no max-pool. Convolutions have no bias; every
shortcut that changes shape is a 1x1 convolution + batch norm (projection);
batch-norm eps 1e-5.

The script is embedded in the selfsup binary (bench/embed.go) and run from a
temporary file by `selfsup bench train --peer torch`. It needs only torch
(installed by `bash scripts/bench_setup.sh`).
"""

import argparse
import json
import resource
import sys
import time

SETUP_HINT = "run bash scripts/bench_setup.sh"

# name -> (block kind, blocks per stage, stage widths, stem kind)
ARCHS = {
    "resnet18": ("basic", [2, 2, 2, 2], [64, 128, 256, 512], "imagenet"),
    "resnet34": ("basic", [3, 4, 6, 3], [64, 128, 256, 512], "imagenet"),
    "resnet50": ("bottleneck", [3, 4, 6, 3], [64, 128, 256, 512], "imagenet"),
    "resnet18c": ("basic", [2, 2, 2, 2], [64, 128, 256, 512], "cifar"),
    "resnet20c": ("basic", [3, 3, 3], [16, 32, 64], "cifar"),
}
DEFAULT_SIZE = {"imagenet": 224, "cifar": 32}
CLASSES = 10
BN_EPS = 1e-5


def fail(msg, code=1):
    print("torch_train: " + msg, file=sys.stderr)
    sys.exit(code)


try:
    import torch
    from torch import nn
    import torch.nn.functional as F
except ImportError as e:  # the one-line error the Go side passes on
    fail("torch is not importable from %s (%s); %s" % (sys.executable, e, SETUP_HINT), 3)


def conv_bn(in_c, out_c, k, stride):
    """conv_bn is a bias-free k x k convolution (padding k // 2) + batch norm."""
    return nn.Sequential(
        nn.Conv2d(in_c, out_c, k, stride=stride, padding=k // 2, bias=False),
        nn.BatchNorm2d(out_c, eps=BN_EPS),
    )


class Basic(nn.Module):
    """Basic residual block: 3x3 (stride) -> 3x3, projection shortcut on a shape change."""

    def __init__(self, in_c, out_c, stride):
        super().__init__()
        self.c1 = conv_bn(in_c, out_c, 3, stride)
        self.c2 = conv_bn(out_c, out_c, 3, 1)
        self.down = conv_bn(in_c, out_c, 1, stride) if stride != 1 or in_c != out_c else None

    def forward(self, x):
        h = self.c2(F.relu(self.c1(x)))
        return F.relu(h + (x if self.down is None else self.down(x)))


class Bottleneck(nn.Module):
    """Bottleneck block: 1x1 reduce -> 3x3 (stride) -> 1x1 expand by 4."""

    def __init__(self, in_c, width, stride):
        super().__init__()
        out_c = 4 * width
        self.c1 = conv_bn(in_c, width, 1, 1)
        self.c2 = conv_bn(width, width, 3, stride)
        self.c3 = conv_bn(width, out_c, 1, 1)
        self.down = conv_bn(in_c, out_c, 1, stride) if stride != 1 or in_c != out_c else None

    def forward(self, x):
        h = self.c3(F.relu(self.c2(F.relu(self.c1(x)))))
        return F.relu(h + (x if self.down is None else self.down(x)))


class Net(nn.Module):
    """Net is backbone + linear head: [N, 3, H, W] -> logits [N, 10]."""

    def __init__(self, arch, in_c=3):
        super().__init__()
        kind, blocks, widths, stem = ARCHS[arch]
        if stem == "imagenet":
            self.stem = conv_bn(in_c, 64, 7, 2)
            self.pool = nn.MaxPool2d(3, stride=2, padding=1)
            ch = 64
        else:
            self.stem = conv_bn(in_c, widths[0], 3, 1)
            self.pool = None
            ch = widths[0]
        layers = []
        for st, (n, w) in enumerate(zip(blocks, widths)):
            for i in range(n):
                stride = 2 if i == 0 and st > 0 else 1
                if kind == "bottleneck":
                    layers.append(Bottleneck(ch, w, stride))
                    ch = 4 * w
                else:
                    layers.append(Basic(ch, w, stride))
                    ch = w
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(ch, CLASSES)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = F.relu(self.stem(x))
        if self.pool is not None:
            x = self.pool(x)
        x = self.layers(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def peak_rss_mb():
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def describe(arch, size):
    """describe returns the structure of arch's network for the Go tests."""
    net = Net(arch).eval()
    convs = []

    def hook(m, inp, out):
        x = inp[0]
        convs.append([m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0], m.padding[0], x.shape[2], x.shape[3]])

    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_hook(hook)
    with torch.no_grad():
        out = net(torch.zeros(1, 3, size, size))
    params = sum(p.numel() for p in net.parameters())
    buffers = sum(b.numel() for name, b in net.named_buffers() if not name.endswith("num_batches_tracked"))
    return {
        "arch": arch,
        "size_px": size,
        "params": params,
        "buffers": buffers,
        "param_shapes": sorted(list(p.shape) for p in net.parameters()),
        "convs": convs,
        "logits_shape": list(out.shape),
        "torch_version": torch.__version__,
    }


def bench(a):
    torch.manual_seed(1)
    net = Net(a.arch).train()
    fmt = torch.channels_last if a.memory_format == "channels_last" else torch.contiguous_format
    net = net.to(memory_format=fmt)
    x = torch.randn(a.batch, 3, a.size, a.size).contiguous(memory_format=fmt)
    y = torch.randint(0, CLASSES, (a.batch,))
    decay = [p for p in net.parameters() if p.dim() >= 2]
    no_decay = [p for p in net.parameters() if p.dim() < 2]
    opt = torch.optim.SGD(
        [{"params": decay, "weight_decay": 5e-4}, {"params": no_decay, "weight_decay": 0.0}],
        lr=1e-3,
        momentum=0.9,
    )

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.autocast == "bf16"):
            logits = net(x)
        loss = F.cross_entropy(logits.float(), y)
        loss.backward()
        opt.step()
        return loss

    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    el = time.perf_counter() - t0
    if not torch.isfinite(loss):
        fail("%s: non-finite loss %s after %d steps" % (a.arch, loss.item(), a.warmup + a.steps))
    return {
        "engine": "torch",
        "arch": a.arch,
        "batch": a.batch,
        "size_px": a.size,
        "warmup": a.warmup,
        "steps": a.steps,
        "step_seconds": el / a.steps,
        "images_per_sec": a.batch * a.steps / el,
        "peak_rss_mb": peak_rss_mb(),
        "threads": torch.get_num_threads(),
        "memory_format": a.memory_format,
        "autocast": a.autocast,
        "torch_version": torch.__version__,
        "mkldnn": torch.backends.mkldnn.is_available(),
    }


def main():
    p = argparse.ArgumentParser(description="PyTorch CPU training-step benchmark, the peer of `selfsup bench train`")
    p.add_argument("--arch", default="resnet18c", help="architecture (%s); with --check-params a comma-separated list" % ", ".join(sorted(ARCHS)))
    p.add_argument("--batch", type=int, default=64, help="images per step")
    p.add_argument("--size", type=int, default=0, help="input size in pixels (default: 32 for CIFAR variants, 224 otherwise)")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (default: torch's own choice)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    p.add_argument("--steps", type=int, default=3, help="timed steps")
    p.add_argument("--memory-format", default="contiguous", choices=["contiguous", "channels_last"], help="activation and weight layout: contiguous (NCHW) or channels_last (NHWC)")
    p.add_argument("--autocast", default="none", choices=["none", "bf16"], help="bf16: forward pass and loss under torch.autocast (bfloat16 mixed precision)")
    p.add_argument("--check-params", action="store_true", help="print the network's structure (one JSON line per arch) and exit")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last stdout line")
    a = p.parse_args()

    archs = a.arch.split(",") if a.check_params else [a.arch]
    for arch in archs:
        if arch not in ARCHS:
            fail("unknown architecture %r (known: %s)" % (arch, ", ".join(sorted(ARCHS))), 2)
    if a.threads < 0 or a.batch <= 0 or a.warmup < 0 or a.steps <= 0 or a.size < 0:
        fail("need --batch > 0, --steps > 0, --warmup >= 0, --threads >= 0, --size >= 0; got batch %d steps %d warmup %d threads %d size %d"
             % (a.batch, a.steps, a.warmup, a.threads, a.size), 2)
    if a.threads > 0:
        torch.set_num_threads(a.threads)

    if a.check_params:
        for arch in archs:
            size = a.size or DEFAULT_SIZE[ARCHS[arch][3]]
            print(json.dumps(describe(arch, size)), flush=True)
        return

    a.size = a.size or DEFAULT_SIZE[ARCHS[a.arch][3]]
    import_rss = peak_rss_mb()
    r = bench(a)
    r["import_rss_mb"] = import_rss
    print("torch %s (%s, %d threads), %s batch %d at %d px: %.2f img/s, %.3f s/step, peak RSS %.0f MB"
          % (r["torch_version"], r["memory_format"], r["threads"], r["arch"], r["batch"], r["size_px"],
             r["images_per_sec"], r["step_seconds"], r["peak_rss_mb"]), file=sys.stderr)
    if a.json:
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
