"""PyTorch reference for `qdrift bench`: Hugging Face BertModel with random weights of a given shape,
FP32 (TF32 off) and FP16, eager with SDPA attention, batch sizes at one sequence length, timed with CUDA
events: median of N forwards after warm-up, on random token ids. Prints one JSON object."""
import json, sys, statistics
import torch
from transformers import BertConfig, BertModel

SHAPES = {
    "bert-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "minilm": dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536),
    "bge-small": dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=12, intermediate_size=1536),
}

def main(shape, batches, seq, runs, warmup):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(42)
    cfg = BertConfig(vocab_size=30522, max_position_embeddings=512, attn_implementation="sdpa", **SHAPES[shape])
    out = {"model": "shape:" + shape, "device": torch.cuda.get_device_name(0), "torch": torch.__version__, "rows": []}
    for dtype in (torch.float32, torch.float16):
        model = BertModel(cfg, add_pooling_layer=False).cuda().eval().to(dtype)
        for b in batches:
            ids = torch.randint(1996, 28996, (b, seq), device="cuda")
            mask = torch.ones_like(ids)
            with torch.inference_mode():
                for _ in range(warmup):
                    model(input_ids=ids, attention_mask=mask)
                torch.cuda.synchronize()
                times = []
                for _ in range(runs):
                    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    s.record()
                    model(input_ids=ids, attention_mask=mask)
                    e.record()
                    e.synchronize()
                    times.append(s.elapsed_time(e))
            out["rows"].append({"dtype": str(dtype).replace("torch.", ""), "batch": b, "seq": seq,
                                "median_ms": statistics.median(times)})
        del model
        torch.cuda.empty_cache()
    print(json.dumps(out))

if __name__ == "__main__":
    main(sys.argv[1], [int(x) for x in sys.argv[2].split(",")], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
