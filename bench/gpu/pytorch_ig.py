"""PyTorch reference for `qdrift bench --ig-steps`: Integrated Gradients as Captum computes it, by hand
(no Captum on the host): Hugging Face BertModel with random weights of a shape, a linear head on [CLS],
one sequence of random ids; the n interpolated word-embedding inputs go through as one batch
(inputs_embeds = path point + position + type, added by BertEmbeddings), torch.autograd.grad of the
summed target logit with respect to them (weights frozen: no weight gradients), weighted sum over the
steps. FP32 (TF32 off), FP32 with TF32 matrix products (allow_tf32, the counterpart of qdrift's --tf32) and
FP16, eager, SDPA attention. Median of CUDA-event timings after warm-up.
Prints one JSON object."""
import json, sys, statistics
import numpy as np
import torch
from transformers import BertConfig, BertModel
from pytorch_bert import SHAPES  # the forward benchmark's shapes (same folder)

def main(shape, steps, seq, runs, warmup):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(42)
    cfg = BertConfig(vocab_size=30522, max_position_embeddings=512, attn_implementation="sdpa", **SHAPES[shape])
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    alphas = torch.tensor((nodes + 1) / 2, device="cuda")
    w = torch.tensor(weights / 2, device="cuda")
    out = {"model": "shape:" + shape, "device": torch.cuda.get_device_name(0), "torch": torch.__version__, "steps": steps,
           "seq": seq, "rows": []}
    for label, dtype, tf32 in (("float32", torch.float32, False), ("tf32", torch.float32, True), ("float16", torch.float16, False)):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        model = BertModel(cfg, add_pooling_layer=False).cuda().eval().to(dtype)
        for p in model.parameters():
            p.requires_grad_(False)
        head = torch.nn.Linear(cfg.hidden_size, 2).cuda().to(dtype).requires_grad_(False)
        ids = torch.randint(1996, 28996, (1, seq), device="cuda")
        x = model.embeddings.word_embeddings(ids)            # [1, seq, h]
        x0 = torch.zeros_like(x)
        mask = torch.ones(steps, seq, device="cuda", dtype=torch.long)

        def ig():
            path = (x0 + alphas.to(dtype).view(-1, 1, 1) * (x - x0)).requires_grad_(True)   # [steps, seq, h]
            h = model(inputs_embeds=path, attention_mask=mask).last_hidden_state
            target = head(h[:, 0]).float()[:, 1].sum()
            g, = torch.autograd.grad(target, path)
            return (x - x0) * (w.to(dtype).view(-1, 1, 1) * g).sum(0, keepdim=True)

        for _ in range(warmup):
            ig()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        times = []
        for _ in range(runs):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            ig()
            e.record()
            e.synchronize()
            times.append(s.elapsed_time(e))
        out["rows"].append({"dtype": label, "ms_per_ig": statistics.median(times),
                            "peak_mib": torch.cuda.max_memory_allocated() / 2**20})
        del model, head
        torch.cuda.empty_cache()
    print(json.dumps(out))

if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
