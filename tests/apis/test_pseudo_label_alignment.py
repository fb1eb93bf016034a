"""ReCo+'s pseudo-labels line up with their images (issue 22): a segmentor
whose answer is known (red pixels -> class 1) labels an image with an
off-centre red box through a cropping test pipeline (ReCo's Cityscapes /
COCO-Stuff protocol: shorter side resized, centre crop); the written label
map must have the image's size, the box exactly where it is in the image,
and 255 where the crop did not reach. Before, the crop's prediction was
stretched over the whole image. Also: torchvision parity of the crop, and
ReCo+'s training pipeline reading the label back in register."""
import cv2
import numpy as np
import pytest
import torch
from mmseg.models.segmentors.base import BaseSegmentor

from clipdense.registry import MODELS

FRAME_KEYS = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'pad_shape',
              'scale_factor', 'flip', 'flip_direction', 'reduced_zero_label', 'crop_frame')


@MODELS.register_module(force=True)
class RedPixelSegmentor(BaseSegmentor):
    """Class 1 where the (BGR, unnormalised) input is red, else 0."""

    def __init__(self, data_preprocessor=None, train_cfg=None, init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.align_corners = False

    def encode_decode(self, inputs, batch_img_metas=None):
        red = ((inputs[:, 2] > 150) & (inputs[:, 0] < 100)).float()
        return torch.stack([1 - red, red], dim=1)

    def predict(self, inputs, data_samples=None):
        return self.postprocess_result(self.encode_decode(inputs), data_samples)

    def extract_feat(self, inputs):
        return inputs

    def _forward(self, inputs, data_samples=None):
        return self.encode_decode(inputs)

    def loss(self, inputs, data_samples):
        raise NotImplementedError


def _model(pipeline):
    from mmengine.config import Config

    from clipdense.apis import init_model
    cfg = Config(dict(
        default_scope='clipdense',
        model=dict(type='RedPixelSegmentor',
                   data_preprocessor=dict(type='SegDataPreProcessor', bgr_to_rgb=False)),
        test_pipeline=pipeline))
    model = init_model(cfg)
    model.dataset_meta = dict(classes=('background', 'red'), palette=[[0, 0, 0], [255, 0, 0]])
    return model


def _image(folder, h=64, w=128, box=(10, 30, 70, 90)):
    img = np.full((h, w, 3), 90, np.uint8)
    y0, y1, x0, x1 = box
    img[y0:y1, x0:x1] = (0, 0, 255)  # BGR red, right of centre
    folder.mkdir(exist_ok=True)
    cv2.imwrite(str(folder / 'scene.png'), img)
    return img


def test_cropped_pseudo_labels_line_up_with_the_image(tmp_path):
    from clipdense.apis import write_pseudo_labels
    img = _image(tmp_path / 'img')
    model = _model([dict(type='LoadImageFromFile'),
                    dict(type='CenterCropFrame', scale=32, crop_size=32),
                    dict(type='PackSegInputs', meta_keys=FRAME_KEYS)])
    write_pseudo_labels(model, str(tmp_path / 'img'), str(tmp_path / 'out'), progress=False)
    lab = cv2.imread(str(tmp_path / 'out' / 'scene.png'), cv2.IMREAD_UNCHANGED)
    assert lab.shape == img.shape[:2]
    # 64x128 -> 32x64, centre 32x32 = columns 16..47 of the resized image,
    # i.e. columns 32..95 of the image; the rows are all kept
    expect = np.full((64, 128), 255, np.uint8)
    expect[:, 32:96] = 0
    expect[10:30, 70:90] = 1
    np.testing.assert_array_equal(lab, expect)


def test_uncropped_pipeline_and_hidden_crops(tmp_path):
    from clipdense.apis import write_pseudo_labels
    img = _image(tmp_path / 'img')
    red = ((img[:, :, 2] > 150) & (img[:, :, 0] < 100)).astype(np.uint8)
    # native size (ReCo's KITTI-STEP config): the label is the mask itself
    model = _model([dict(type='LoadImageFromFile'), dict(type='PackSegInputs')])
    write_pseudo_labels(model, str(tmp_path / 'img'), str(tmp_path / 'full'), progress=False)
    np.testing.assert_array_equal(
        cv2.imread(str(tmp_path / 'full' / 'scene.png'), cv2.IMREAD_UNCHANGED), red)
    # mmseg's CenterCrop gives no frame: refused instead of stretched
    model = _model([dict(type='LoadImageFromFile'),
                    dict(type='ResizeShortestEdge', scale=32, max_size=1000),
                    dict(type='CenterCrop', crop_size=32), dict(type='PackSegInputs')])
    with pytest.raises(ValueError, match='CenterCropFrame'):
        write_pseudo_labels(model, str(tmp_path / 'img'), str(tmp_path / 'bad'),
                            progress=False)


def test_reco_plus_training_pipeline_reads_labels_in_register(tmp_path):
    """The ReCo+ configs crop image and pseudo-label again the same way
    (bilinear image, nearest labels): the crop's prediction comes back
    unchanged and on the red pixels."""
    from mmcv.transforms import Compose

    from clipdense.apis import write_pseudo_labels
    _image(tmp_path / 'img')
    model = _model([dict(type='LoadImageFromFile'),
                    dict(type='CenterCropFrame', scale=32, crop_size=32),
                    dict(type='PackSegInputs', meta_keys=FRAME_KEYS)])
    write_pseudo_labels(model, str(tmp_path / 'img'), str(tmp_path / 'out'), progress=False)
    train = Compose([dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                     dict(type='CenterCropFrame', scale=32, crop_size=32,
                          interpolation='bilinear', crop_frame=False)])
    res = train(dict(img_path=str(tmp_path / 'img' / 'scene.png'),
                     seg_map_path=str(tmp_path / 'out' / 'scene.png'),
                     seg_fields=[], reduce_zero_label=False))
    gt, im = res['gt_seg_map'], res['img']
    assert gt.shape == im.shape[:2] == (32, 32) and (gt != 255).all()
    # the box: resized columns 35..44 -> crop 19..28, rows 5..14
    expect = np.zeros((32, 32), np.uint8)
    expect[5:15, 19:29] = 1
    np.testing.assert_array_equal(gt, expect)
    # image and label agree away from the box's blurred edge
    assert (im[7:13, 21:27, 2] > 200).all() and (im[:, :15, 2] < 120).all()


@pytest.mark.parametrize('shape', [(427, 640), (640, 480), (375, 1242), (320, 320)])
def test_center_crop_frame_matches_torchvision(shape):
    """CenterCropFrame is torchvision's Resize(320) + CenterCrop(320) on PIL
    images (STEGO's / ReCo's evaluation transform, nearest for the image
    too; bilinear for ReCo+'s training images)."""
    import torchvision.transforms as T
    from PIL import Image

    from clipdense.datasets.transforms import CenterCropFrame
    rng = np.random.RandomState(0)
    img = rng.randint(0, 255, (*shape, 3), dtype=np.uint8)
    lab = rng.randint(0, 27, shape, dtype=np.uint8)
    for interp, mode in (('nearest', Image.NEAREST), ('bilinear', Image.BILINEAR)):
        tv = T.Compose([T.Resize(320, mode), T.CenterCrop(320)])
        tv_lab = T.Compose([T.Resize(320, Image.NEAREST), T.CenterCrop(320)])
        out = CenterCropFrame(320, 320, interpolation=interp)(
            dict(img=img.copy(), gt_seg_map=lab.copy(), seg_fields=['gt_seg_map'],
                 img_shape=shape, ori_shape=shape))
        np.testing.assert_array_equal(out['img'], np.asarray(tv(Image.fromarray(img))))
        np.testing.assert_array_equal(out['gt_seg_map'],
                                      np.asarray(tv_lab(Image.fromarray(lab))))
        assert out['ori_shape'] == (320, 320) == out['img_shape']
        assert out['crop_frame']['ori_shape'] == shape


def test_paste_is_the_inverse_of_the_crop():
    from clipdense.datasets.transforms import CenterCropFrame, paste_into_frame
    rng = np.random.RandomState(1)
    for shape in ((427, 640), (375, 1242), (1024, 2048)):
        t = CenterCropFrame(320, 320)
        frame = t(dict(img=np.zeros((*shape, 3), np.uint8), seg_fields=[],
                       img_shape=shape, ori_shape=shape))['crop_frame']
        pred = rng.randint(0, 27, (320, 320)).astype(np.uint8)
        full = paste_into_frame(pred, frame)
        assert full.shape == shape
        back = t(dict(img=np.zeros((*shape, 3), np.uint8), gt_seg_map=full,
                      seg_fields=['gt_seg_map'], img_shape=shape, ori_shape=shape))
        np.testing.assert_array_equal(back['gt_seg_map'], pred)
    with pytest.raises(ValueError, match='not the crop size'):
        paste_into_frame(np.zeros((5, 5), np.uint8), frame)
    with pytest.raises(ValueError, match='larger than the resized'):
        CenterCropFrame(32, 64)(dict(img=np.zeros((40, 40, 3), np.uint8), seg_fields=[]))
    with pytest.raises(ValueError, match='interpolation'):
        CenterCropFrame(32, 32, interpolation='area')
