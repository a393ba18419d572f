"""The engine libraries' wrappers (app/engines/*_lib.py), run on the real libraries.

Each wrapper holds every call into its library that the library does not document, checked
against the versions in its CHECKED_VERSIONS. A bump in requirements.txt fails here until the
wrapper is checked again with the new version: then update CHECKED_VERSIONS.
"""

import ast
import importlib.metadata
import random
import re
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import onnxruntime
import openvino
import pytest

from app.engines import ddddocr_lib, deadline, rapidocr_lib, registry, tesseract_lib
from app.engines.base import EngineConfig
from app.engines.rapidocr import _build_model
from app.errors import EngineFailed, EngineTimeout
from app.tests.imaging import cer, render

APP = Path(__file__).resolve().parents[1]
REQUIREMENTS = APP.parent / "requirements.txt"
WRAPPERS = (tesseract_lib, rapidocr_lib, ddddocr_lib)
ENGINE_PACKAGES = {"tesserocr", "rapidocr", "onnxruntime", "openvino", "ddddocr"}
# Calls only a wrapper may make: private methods and attributes of the engine libraries.
PRIVATE = re.compile(
    r"\._load_\w+_model\b|\._preprocess_image\b|\._softmax\b|\._process_text_output\b|\._model_path\b"
    r"|\.ocr_engine\b|\.detection_engine\b|\.session\.session\b"
)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned() -> dict[str, str]:
    """Package -> version of each `name==version` line of requirements.txt (extras dropped)."""
    pins = {}
    for line in REQUIREMENTS.read_text().splitlines():
        match = re.match(r"\s*([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?\s*==\s*([^\s;#]+)", line)
        if match:
            pins[canonical(match[1])] = match[2]
    return pins


CHECKED = [(wrapper, package) for wrapper in WRAPPERS for package in wrapper.CHECKED_VERSIONS]


@pytest.mark.parametrize(
    ("wrapper", "package"), CHECKED, ids=[f"{w.__name__.rsplit('.')[-1]}-{p}" for w, p in CHECKED]
)
def test_each_wrapper_was_checked_against_the_pinned_version(wrapper: ModuleType, package: str):
    checked, pin = wrapper.CHECKED_VERSIONS[package], pinned().get(canonical(package))
    assert pin == checked, (
        f"requirements.txt pins {package}=={pin}, but {wrapper.__name__} was checked against {checked}: "
        f"re-check its calls into {package} (the private ones above all) with {pin}, "
        "then update its CHECKED_VERSIONS."
    )
    installed = importlib.metadata.version(package)
    assert installed == pin, f"{package} {installed} is installed, requirements.txt pins {pin}: reinstall."


def test_every_engine_package_has_a_checked_wrapper():
    assert {package for _, package in CHECKED} == ENGINE_PACKAGES
    assert set(pinned()) >= ENGINE_PACKAGES


def test_the_tesseract_reading_is_the_version_checked():
    """tesserocr's wheel bundles its own Tesseract: the one whose TSV and hOCR were checked."""
    assert tesseract_lib.version().rsplit(".", 1)[0] == tesseract_lib.CHECKED_TESSERACT


def test_library_private_calls_are_made_in_the_wrappers_only():
    wrappers = {Path(wrapper.__file__).resolve() for wrapper in WRAPPERS}
    offenders = [
        f"{path.relative_to(APP.parent)}:{number}"
        for path in sorted(APP.rglob("*.py"))
        if path.resolve() not in wrappers and path.resolve() != Path(__file__).resolve()
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if PRIVATE.search(line)
    ]
    assert offenders == []


def test_only_the_registry_reads_settings_in_the_engine_layer():
    readers = []
    for path in sorted((APP / "engines").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("django"):
                readers.append(path.name)
            if isinstance(node, ast.Import) and any(alias.name.startswith("django") for alias in node.names):
                readers.append(path.name)
    assert readers == ["registry.py"]


# --- tesseract_lib ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def eng_reader():
    """One loaded English reader for the wrapper's tests (a load is 0.1-1 s)."""
    readers = tesseract_lib.Readers()
    with readers.reader(tesseract_lib.datapath(), "eng") as api:
        yield api


def test_tesseract_recognizes_once_for_every_rendering(eng_reader):
    outputs = tesseract_lib.read(
        eng_reader, render(["Wrapped words 42"]), outputs=("tsv", "hocr"), timeout=30
    )
    assert list(outputs) == ["tsv", "hocr"]
    hocr = outputs["hocr"]
    assert hocr.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html')
    assert f"<meta name='ocr-system' content='tesseract {tesseract_lib.version()}' />" in hocr
    assert hocr.endswith(" </body>\n</html>\n")
    assert [word.split("'>")[-1] for word in re.findall(r"class='ocrx_word'[^>]*>[^<]*", hocr)] == [
        "Wrapped",
        "words",
        "42",
    ]
    assert outputs["tsv"].split("\n")[0].split("\t") == list(tesseract_lib.TSV_COLUMNS)
    data = tesseract_lib.parse_tsv(outputs["tsv"])
    words = [word for word, level in zip(data["text"], data["level"], strict=True) if level == 5]
    assert words == ["Wrapped", "words", "42"]
    for column in ("level", "block_num", "par_num", "line_num", "left", "top", "width", "height"):
        assert all(isinstance(value, int) for value in data[column]), column
    assert all(0 < conf <= 100 for conf, level in zip(data["conf"], data["level"], strict=True) if level == 5)
    assert {conf for conf, level in zip(data["conf"], data["level"], strict=True) if level < 5} == {-1.0}


def test_tesseract_takes_the_images_resolution_as_the_command_took_the_pngs(eng_reader):
    image = render(["Dots per inch"])
    image.info["dpi"] = (300, 300)
    assert "scan_res 300 300" in tesseract_lib.read(eng_reader, image, outputs=("hocr",), timeout=30)["hocr"]
    del image.info["dpi"]  # none: Tesseract estimates it, as the command did
    assert (
        "scan_res 300 300" not in tesseract_lib.read(eng_reader, image, outputs=("hocr",), timeout=30)["hocr"]
    )


def test_tesseract_failures_are_engine_errors(eng_reader):
    with pytest.raises(EngineFailed, match=r"^Tesseract failed: could not load xxx from "):
        tesseract_lib.new_reader(tesseract_lib.datapath(), "xxx")
    page = render([f"line {i} of a long page" for i in range(60)], size=40)
    with pytest.raises(EngineTimeout):
        tesseract_lib.read(eng_reader, page, outputs=("tsv",), timeout=0.01)
    # the reader that timed out reads the next image whole
    data = tesseract_lib.parse_tsv(
        tesseract_lib.read(eng_reader, render(["After"]), outputs=("tsv",), timeout=30)["tsv"]
    )
    assert [word for word in data["text"] if word.strip()] == ["After"]


def test_tesseract_datapath_and_languages(monkeypatch, tmp_path):
    assert tesseract_lib.datapath() in [f"{folder}/" for folder in tesseract_lib.DEBIAN_TESSDATA]
    languages = tesseract_lib.languages(tesseract_lib.datapath())
    assert {"eng", "chi_sim"} <= set(languages)
    assert "osd" not in languages
    monkeypatch.setenv("TESSDATA_PREFIX", str(tmp_path))  # Tesseract's own variable wins
    assert tesseract_lib.datapath() == ""
    (tmp_path / "eng.traineddata").symlink_to(Path(tesseract_lib.DEBIAN_TESSDATA[0]) / "eng.traineddata")
    assert tesseract_lib.datapath() == f"{tmp_path}/"
    assert tesseract_lib.languages(tesseract_lib.datapath()) == ["eng"]


def test_tesseract_readers_are_reused_and_never_shared():
    readers, path = tesseract_lib.Readers(), tesseract_lib.datapath()
    with readers.reader(path, "eng") as first, readers.reader(path, "eng") as second:
        assert second is not first  # the first is busy: another thread gets another
    with readers.reader(path, "eng") as again:
        assert again in (first, second)
    assert readers.created == 2
    assert readers.loaded() == {(path, "eng"): 2}


def test_tesseract_readers_keep_a_bounded_number_of_language_sets():
    readers, path = tesseract_lib.Readers(max_sets=2, max_idle=1), tesseract_lib.datapath()
    with readers.reader(path, "eng") as a, readers.reader(path, "eng") as b:
        pass
    assert readers.loaded() == {(path, "eng"): 1}  # one idle per set kept; the other ended
    for lang in ("chi_sim", "eng+chi_sim", "chi_sim"):
        with readers.reader(path, lang):
            pass
    assert readers.loaded() == {(path, "eng+chi_sim"): 1, (path, "chi_sim"): 1}  # eng ended: least recent
    assert readers.created == 4
    for ended in (a, b):
        assert ended.GetInitLanguagesAsString() == ""  # End() unloaded it


# --- rapidocr_lib -----------------------------------------------------------------------


class CountingSession:
    def __init__(self, session) -> None:
        self.session, self.runs = session, 0

    def run(self, *args, **kwargs):
        self.runs += 1
        return self.session.run(*args, **kwargs)

    def infer(self, *args, **kwargs):  # an OpenVINO infer request's run
        self.runs += 1
        return self.session.infer(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self.session, name)


RUNS = {"onnxruntime": onnxruntime.InferenceSession, "openvino": openvino.InferRequest}
WRAPS = {"onnxruntime": deadline.CancellableSession, "openvino": deadline.CancellableInferRequest}


def threads_of(runtime: str, wrapped) -> int:
    if runtime == "openvino":
        return int(wrapped.get_compiled_model().get_property("INFERENCE_NUM_THREADS"))
    return wrapped.get_session_options().intra_op_num_threads


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_rapidocr_loads_every_stage_with_the_session_it_runs(runtime):
    """Before load_stages no stage exists (RapidOCR loads them on first use); after it, each
    stage runs the session (or infer request) it was handed: the engine's deadline reaches
    every run, on the threads asked."""
    bare = rapidocr_lib.new_model({"Global.log_level": "error"}, runtime)
    assert rapidocr_lib.sessions(bare) == []
    model = _build_model(EngineConfig(threads=1, timeout=30, rapidocr_runtime=runtime)).model
    built = rapidocr_lib.sessions(model)
    assert [type(session) for session in built] == [WRAPS[runtime]] * 3
    for session in built:
        assert type(session.request if runtime == "openvino" else session.session) is RUNS[runtime]
        assert threads_of(runtime, session) == 1
        if runtime == "openvino":  # bf16 on a CPU that has it changes the text
            precision = session.get_compiled_model().get_property("INFERENCE_PRECISION_HINT")
            assert precision == openvino.Type.f32
    rapidocr_lib.load_stages(model, CountingSession)
    detector, classifier, recognizer = rapidocr_lib.sessions(model)
    output = model(np.asarray(render(["Counted runs"]))[:, :, ::-1], use_cls=True)
    assert cer("Counted runs", " ".join(output.txts)) <= 0.1
    assert (detector.runs, classifier.runs, recognizer.runs) == (1, 1, 1)


def test_an_openvino_request_stops_at_the_deadline_and_runs_again():
    """A synchronous OpenVINO infer() cannot be cancelled: the wrapper starts it async, and
    the deadline's timer cancels it; the same request then reads the next image."""
    model = _build_model(EngineConfig(threads=1, timeout=30, rapidocr_runtime="openvino")).model
    detector = rapidocr_lib.sessions(model)[0]
    large = np.random.default_rng(0).random((1, 3, 1984, 1536), dtype=np.float32)
    with deadline.limit(0.1) as run, pytest.raises(RuntimeError, match="Infer Request was canceled"):
        detector.infer([large])  # a whole inference of this size takes seconds
    assert run.terminate
    with deadline.limit(0.1) as run:
        time.sleep(0.2)
        with pytest.raises(TimeoutError):
            detector.infer([large])  # past the time, nothing starts
    small = np.zeros((1, 3, 64, 64), dtype=np.float32)
    with deadline.limit(30) as run:
        detector.infer([small])
    assert not run.terminate
    assert detector.get_output_tensor().data.shape == (1, 1, 64, 64)


@pytest.mark.parametrize(("runtime", "version"), [("onnxruntime", "1.31.1"), ("openvino", "2026.4.0")])
def test_rapidocr_runtime_versions(runtime, version):
    assert rapidocr_lib.runtime_version(runtime) == version


# --- ddddocr_lib ------------------------------------------------------------------------


@pytest.mark.parametrize("threads", [0, 1])
def test_ddddocr_models_keep_their_parts_with_the_threads_asked(threads):
    reader = ddddocr_lib.new_model(threads)
    detector = ddddocr_lib.new_model(threads, det=True, ocr=False)
    assert ddddocr_lib.new_model(threads, det=False, ocr=False) is not None  # the slider: no session
    sessions = ddddocr_lib.sessions(reader) + ddddocr_lib.sessions(detector)
    assert [session.get_session_options().intra_op_num_threads for session in sessions] == [threads] * 2
    image = render(["k7mx3"], size=40, pad=10)
    assert ddddocr_lib.classify(reader, image)["text"] == reader.classification(image)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_our_classification_is_the_librarys_own_bit_for_bit(seed):
    """ddddocr_lib.classify reads ddddocr's softmax as an array, skipping the library's
    round trip through Python lists: it must stay exactly what the library answers."""
    model = registry.get("ddddocr")._model.get()
    image = render([random.Random(seed).choice(["k7mx3", "3 + 8 = ?", "Qz42w"])], size=40, pad=10)
    ours = ddddocr_lib.classify(model, image)
    theirs = model.classification(image, probability=True)
    assert ours["text"] == theirs["text"]
    assert ours["charset"] == theirs["charset"]
    assert np.array_equal(
        ours["probabilities"], np.array(theirs["probabilities"], dtype=ours["probabilities"].dtype)
    )
    assert ours["confidence"] == pytest.approx(theirs["confidence"])
