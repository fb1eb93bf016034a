# Candidate H of the proxy CLIP (issue #25, seventh round): the shipped
# proxy's recipe (candidate G,
# clip_synth-vit8_1xb64-12e_synthetic-rich-captions-regiontokens-128x128.py)
# with the region loss on the anomaly images too. The rich-caption corpus
# of version 4 writes their label maps: the defect's pixels are named
# "damaged <category>" and the rest of the image "intact <category>"
# (rich_captions.anomaly_region_names), so the value-path tokens inside a
# defect must pick the damaged name among the batch's names, those around
# it the intact one. Chosen after seeing the AnoVL ablation on G (the
# training-free map below CLIP's, results/ablations.md): G's region loss
# never saw an anomaly image. Everything else (weight 1, the value path,
# 12 epochs, seed 0) is G's. Judged by the anomaly rule of
# tools/analysis_tools/proxy_clip_selection.py on the corpus's val split.
_base_ = ['./clip_synth-vit8_1xb64-12e_synthetic-rich-captions-regiontokens-128x128.py']
train_dataloader = dict(
    dataset=dict(keep_fields=('kind', 'objects', 'classes', 'seg_map',
                              'seg_classes')))
