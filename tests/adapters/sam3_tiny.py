"""Tiny random SAM 3 checkpoints for the sam3 adapter's tests, written as checkpoint folders the adapter loads
through its own ``from_pretrained`` path (ADAPTERS.md 5.2 and 5.3: configs that work, an offline character-level
CLIP tokenizer). Run in the ``sam`` environment (transformers 5, torchvision)::

    python tests/adapters/sam3_tiny.py OUT_DIR

writes one checkpoint folder, ``Sam3VideoModel`` + ``Sam3VideoProcessor`` (seeded), that also loads as ``Sam3Model`` +
``Sam3Processor`` (the detector's weights), as ``facebook/sam3`` serves both; ``max_num_objects=3`` keeps the random
tracker cheap. Prints a JSON line with the parameter count. Nothing is downloaded.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _tokenizer():
    from transformers import CLIPTokenizer

    chars = [chr(i) for i in range(256)]
    vocab = {c: i for i, c in enumerate(chars)}
    for c in chars:
        vocab[c + "</w>"] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], pad_token="<|endoftext|>")


def _detector_config(tok):
    from transformers import Sam3Config, Sam3ViTConfig, Sam3VisionConfig

    vit = Sam3ViTConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                        image_size=224, patch_size=14, window_size=8, global_attn_indexes=[1], pretrain_image_size=224)
    vision = Sam3VisionConfig(backbone_config=vit, fpn_hidden_size=128, backbone_feature_sizes=[[64, 64], [32, 32],
                                                                                                  [16, 16]])
    text = dict(vocab_size=len(tok), hidden_size=64, intermediate_size=128, projection_dim=64, num_hidden_layers=1,
                num_attention_heads=4, max_position_embeddings=32, bos_token_id=tok.bos_token_id,
                eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return Sam3Config(vision_config=vision, text_config=text,
                      geometry_encoder_config=dict(hidden_size=128, num_layers=1, num_attention_heads=4,
                                                   intermediate_size=128),
                      detr_encoder_config=dict(hidden_size=128, num_layers=1, num_attention_heads=4,
                                               intermediate_size=128),
                      detr_decoder_config=dict(hidden_size=128, num_layers=1, num_queries=8, num_attention_heads=4,
                                               intermediate_size=128),
                      mask_decoder_config=dict(hidden_size=128, num_upsampling_stages=2, num_attention_heads=4))


def build(out: Path) -> dict:
    import torch
    from transformers import (Sam2VideoVideoProcessor, Sam3ImageProcessor, Sam3TrackerVideoConfig, Sam3VideoConfig,
                              Sam3VideoModel, Sam3VideoProcessor)

    tok = _tokenizer()
    det = _detector_config(tok)

    tracker = Sam3TrackerVideoConfig(
        vision_config=det.vision_config,
        prompt_encoder_config=dict(hidden_size=128, image_size=224, patch_size=14, mask_input_channels=4),
        mask_decoder_config=dict(hidden_size=128, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32),
        image_size=224, num_maskmem=3, memory_attention_hidden_size=128, memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=64, memory_attention_rope_feat_sizes=[16, 16],
        memory_encoder_hidden_size=128, memory_encoder_output_channels=64, mask_downsampler_embed_dim=128,
        memory_fuser_embed_dim=128, memory_fuser_intermediate_dim=64)
    vconf = Sam3VideoConfig(detector_config=det, tracker_config=tracker, low_res_mask_size=64,
                            score_threshold_detection=0.0, new_det_thresh=0.0, hotstart_delay=0,
                            max_num_objects=3)
    torch.manual_seed(1)
    video_model = Sam3VideoModel(vconf).eval()
    video_proc = Sam3VideoProcessor(image_processor=Sam3ImageProcessor(size={"height": 224, "width": 224}),
                                    video_processor=Sam2VideoVideoProcessor(size={"height": 224, "width": 224}),
                                    tokenizer=tok)
    out.mkdir(parents=True, exist_ok=True)
    video_model.save_pretrained(out)
    video_proc.save_pretrained(out)
    return {"video_params": sum(p.numel() for p in video_model.parameters())}


if __name__ == "__main__":  # pragma: no cover - run in the sam environment by a fixture
    print(json.dumps(build(Path(sys.argv[1]))))
