"""The PyTorch peer: VGG-16 (net D) in plain torch.nn, in its own process.

python -m vggcli.bench.vgg16_torch THREADS TASK BATCH REPS VARIANT SETTLE: task infer or
train; variant eager, compile, bf16 (bf16 weights) or autocast (bf16 autocast); settle
1: step until the peak RSS settles. Prints the images/s of each timed step and the
peak RSS in MB."""
import sys

from .steps import timed_steps

CONFIG_D = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
            512, 512, 512, "M"]


def build(train):
    import torch.nn as nn
    layers, channels = [], 3
    for v in CONFIG_D:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, v, 3, padding=1), nn.ReLU(True)]
            channels = v
    drop = [nn.Dropout()] if train else []
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(25088, 4096), nn.ReLU(True), *drop,
                         nn.Linear(4096, 4096), nn.ReLU(True), *drop, nn.Linear(4096, 1000))


def main(argv):
    import torch
    import torch.nn as nn
    threads, task, batch, reps, variant, settle = argv[:6]
    batch, reps, train = int(batch), int(reps), task == "train"
    torch.set_num_threads(int(threads))
    net = build(train).to(memory_format=torch.channels_last).train(train)
    x = (torch.rand(batch, 3, 224, 224) * 255 - 128).to(memory_format=torch.channels_last)
    if variant == "bf16":
        net, x = net.to(torch.bfloat16), x.to(torch.bfloat16)
    if variant == "compile":  # inductor's best CPU inference setting: weights frozen, prepacked
        import torch._inductor.config
        torch._inductor.config.freezing = not train
    model = torch.compile(net) if variant == "compile" else net

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=variant == "autocast")
    if train:
        y = torch.arange(batch) % 1000
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

        def step():
            opt.zero_grad()
            with autocast():
                loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
    else:
        def step():
            with torch.inference_mode(), autocast():
                model(x)
    if variant == "compile":  # the first call compiles
        step()
    timed_steps(step, batch, reps, settle == "1")


if __name__ == "__main__":
    main(sys.argv[1:])
