# ReCo+ on the synthetic world with the proxy CLIP ViT as ReCo's CLIP
# (issue #25): a DeepLabv3+ trained on the pseudo-labels that
# configs/reco/reco_clip-synth-vit8_synthetic-128x128.py writes for the
# source style's training images (no ground-truth pixel labels are read in
# training). The student is the tiny-CLIP config's, unchanged: the paper's
# ReCo+ student is a DeepLabv3+ on an ImageNet-initialised ResNet-101, a
# network separate from ReCo's CLIP, so it stays the DeepLabv3+ on the tiny
# CLIP ResNet (the world's pretrained ResNet) with the same recipe and
# 300 iterations; only the pseudo-labels change. Make them first:
#   python tools/dataset_converters/reco_pseudo_labels.py \
#       configs/reco/reco_clip-synth-vit8_synthetic-128x128.py \
#       --img-dir data/synthetic/flat/img_dir/train \
#       --out-dir work_dirs/reco/pseudo_labels/synthetic-flat-train_clip-synth-vit8
#   python tools/train.py configs/reco/reco-plus_deeplabv3plus_clip-synth-vit8_1xb8-300_synthetic-flat-128x128.py
# (tools/analysis_tools/bench_reco.py --clip proxy does both, for 3 seeds.)
_base_ = ['./reco-plus_deeplabv3plus_clip-synth-rn_1xb8-300_synthetic-flat-128x128.py']
pseudo_label_dir = 'work_dirs/reco/pseudo_labels/synthetic-flat-train_clip-synth-vit8'
train_dataloader = dict(
    dataset=dict(
        data_prefix=dict(seg_map_path=pseudo_label_dir),
        ann_file=pseudo_label_dir + '/split.txt'))
