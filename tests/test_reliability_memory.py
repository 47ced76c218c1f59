"""Bounded memory: CPU inference on a 4000x3000 image peaks well below 4 GB, the image capped by the config."""
import re

import pytest

from reliability_support import CONFIG, run_tool, tool_env


@pytest.mark.slow
def test_inference_on_a_4000x3000_image_peaks_below_4_gb(tmp_path):
    proc = run_tool(["tools/benchmark_memory.py", "--config-file", CONFIG, "--width", "4000", "--height", "3000",
                     "--limit-gb", "4", "MODEL.WEIGHTS", ""], tool_env(tmp_path), timeout=300)
    out = proc.stdout + proc.stderr
    pattern = r"(peak RSS|RSS after building the model): [\d.]+ GiB \((\d+) MiB\)"
    mib = {name: int(m) for name, m in re.findall(pattern, out)}
    assert mib["peak RSS"] < 4 * 1024, out
    # What the image itself costs (decoding, the model at the capped size, up to 100 words in 4000x3000
    # coordinates) stays small: uncapped features or full-image masks per word would each cost gigabytes.
    assert mib["peak RSS"] - mib["RSS after building the model"] < 1024, out
    assert "of 4000x3000 is capped to 384x288 by INPUT.MAX_SIZE_TEST=384" in out
    words = int(re.search(r"-> model input 384x288, (\d+) words", out).group(1))
    assert words >= 50  # the score threshold is 0: the post-processing of many words is measured
