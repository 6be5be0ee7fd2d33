"""SpeechBrain emotion plumbing on a tiny random model (random weights: plumbing only).

Runs in the gpu stack's environment (tests/test_gpu_stack.py runs this folder there).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from tests.gpu_stack import require
from voxlive.emotion.base import UNKNOWN
from voxlive.harness.speech import silence

RATE = 16_000

TINY_HPARAMS = """\
# A stand-in with the IEMOCAP model's layout: filterbanks play wav2vec2.
pretrained_path: speechbrain/not-on-this-machine
n_mels: 8
wav2vec2: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>
avg_pool: !new:speechbrain.nnet.pooling.StatisticsPooling
    return_std: False
output_mlp: !new:speechbrain.nnet.linear.Linear
    input_size: !ref <n_mels>
    n_neurons: 4
    bias: False
model: !new:torch.nn.ModuleList
    - [!ref <output_mlp>]
modules:
    wav2vec2: !ref <wav2vec2>
    output_mlp: !ref <output_mlp>
    avg_pool: !ref <avg_pool>
softmax: !new:speechbrain.nnet.activations.Softmax
label_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder
pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        model: !ref <model>
        label_encoder: !ref <label_encoder>
    paths:
        model: !ref <pretrained_path>/model.ckpt
        label_encoder: !ref <pretrained_path>/label_encoder.txt
"""

TINY_INTERFACE = '''\
import torch
from speechbrain.inference.interfaces import Pretrained


class CustomEncoderWav2vec2Classifier(Pretrained):
    """The IEMOCAP model's interface, as its classify_batch behaves: encode, pool, classify."""

    def classify_batch(self, wavs, wav_lens=None):
        if wav_lens is None:
            wav_lens = torch.ones(wavs.shape[0], device=self.device)
        wavs, wav_lens = wavs.to(self.device).float(), wav_lens.to(self.device)
        pooled = self.mods.avg_pool(self.mods.wav2vec2(wavs), wav_lens)
        logits = self.mods.output_mlp(pooled.view(pooled.shape[0], -1))
        out_prob = self.hparams.softmax(logits)
        score, index = torch.max(out_prob, dim=-1)
        return out_prob, score, index, self.hparams.label_encoder.decode_torch(index)
'''


def test_speechbrain_plumbing_on_a_tiny_random_model(tmp_path):
    require("speechbrain")
    import torch
    from speechbrain.dataio.encoder import CategoricalEncoder
    from speechbrain.nnet.linear import Linear

    from voxlive.emotion.speechbrain_backend import SpeechBrainEmotionBackend

    folder = tmp_path / "tiny-emotion"
    folder.mkdir()
    (folder / "hyperparams.yaml").write_text(TINY_HPARAMS)
    (folder / "custom_interface.py").write_text(TINY_INTERFACE)
    encoder = CategoricalEncoder()
    encoder.update_from_iterable(["neu", "ang", "hap", "sad"])
    encoder.save(folder / "label_encoder.txt")
    torch.manual_seed(0)
    mlp = torch.nn.ModuleList([Linear(input_size=8, n_neurons=4, bias=False)])
    torch.save(mlp.state_dict(), folder / "model.ckpt")

    backend = SpeechBrainEmotionBackend(SimpleNamespace(model=str(folder), device="cpu"))
    # The checkpoint was read from the folder, not the hub id the yaml names.
    loaded = backend.classifier.mods.output_mlp.w.weight
    assert torch.equal(loaded.cpu(), mlp[0].w.weight)
    assert sorted(backend.labels) == ["angry", "happy", "neutral", "sad"]
    assert backend.new_speaker() is None

    t = np.arange(2 * RATE) / RATE
    audio = (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    emotion = backend.analyse(audio, None)
    assert emotion.label in backend.labels
    assert sum(emotion.scores.values()) == pytest.approx(1.0, abs=1e-5)
    assert emotion.confidence == max(emotion.scores.values())
    assert emotion.backend == backend.description and emotion.arousal is None
    out_prob, _, _, text = backend.classifier.classify_batch(torch.from_numpy(audio)[None])
    assert emotion.scores[emotion.label] == pytest.approx(float(out_prob.max()), abs=1e-5)
    for no_speech in (np.zeros(0, np.float32), silence(1.0, RATE), audio[:1000]):
        assert backend.analyse(no_speech, None).label == UNKNOWN
