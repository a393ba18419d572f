"""Each real engine reads images drawn in code, through the engine layer alone."""

import importlib.metadata
import io
import logging
import threading
import time

import pytest
from PIL import Image

from app.engines import ddddocr_lib, deadline, rapidocr_lib, registry, tesseract_lib
from app.engines.base import EngineConfig, LazyModel, Line, Options, Picture
from app.engines.ddddocr import DdddOcrEngine
from app.engines.rapidocr import RapidOcrEngine
from app.engines.tesseract import TesseractEngine, _group_lines
from app.errors import EngineTimeout, EngineUnavailable, InvalidInput
from app.tests import corpus
from app.tests.captchas import characters_scene
from app.tests.imaging import CJK_FONT, cer, chinese_lines, english_lines, render


def read(engine_name: str, image: Image.Image, lang: str = "", task: str = ""):
    engine, options = registry.select(engine=engine_name, lang=lang, task=task)
    return engine.recognize(Picture(image), options)


@pytest.mark.parametrize(
    ("engine", "lang", "lines", "font"),
    [
        ("tesseract", "eng", english_lines(6), None),
        ("tesseract", "chi_sim", chinese_lines(6, chars=12), CJK_FONT),
        ("rapidocr", "", english_lines(6), None),
        ("rapidocr", "", chinese_lines(6, chars=12), CJK_FONT),
    ],
    ids=["tesseract-en", "tesseract-zh", "rapidocr-en", "rapidocr-zh"],
)
def test_document_engines_read_generated_text(engine, lang, lines, font):
    image = render(lines, size=40, **({"font": font} if font else {}))
    result = read(engine, image, lang)
    assert cer("\n".join(lines), result.text) <= 0.05
    assert len(result.lines) == len(lines)
    for line, expected in zip(result.lines, lines, strict=True):
        assert cer(expected, line.text) <= 0.1
        xs, ys = [p[0] for p in line.box], [p[1] for p in line.box]
        assert 0 <= min(xs) < max(xs) <= image.width
        assert 0 <= min(ys) < max(ys) <= image.height
        assert 0.5 < line.score <= 1.0


def test_lines_are_in_reading_order_with_boxes_top_to_bottom():
    lines = english_lines(5, seed=3)
    result = read("rapidocr", render(lines))
    tops = [min(p[1] for p in line.box) for line in result.lines]
    assert tops == sorted(tops)


@pytest.mark.slow
def test_rapidocr_reads_a_full_page_without_flipping_lines():
    """3000x4000, 40 lines: the library's defaults gave CER 0.59 here (angle classifier)."""
    lines = english_lines(40, seed=11, words=6)
    page = Image.new("RGB", (3000, 4000), "white")
    page.paste(render(lines, size=48, pad=0), (150, 150))
    result = read("rapidocr", page)
    assert cer("\n".join(lines), result.text) <= 0.01


def test_rapidocr_rotate_option_turns_upside_down_lines_back():
    """The angle classifier is off by default; `rotate` turns it on for upside-down scans."""
    lines = english_lines(3, seed=5)
    upside_down = render(lines, size=36).rotate(180)

    def line_errors(rotate: bool) -> list[float]:
        engine, options = registry.select(engine="rapidocr", rotate=rotate)
        read_lines = [line.text for line in engine.recognize(Picture(upside_down), options).lines]
        return [min(cer(expected, got) for got in read_lines) for expected in lines]

    assert all(error > 0.5 for error in line_errors(rotate=False))
    assert sum(error <= 0.05 for error in line_errors(rotate=True)) >= 2


def test_ddddocr_reads_a_captcha():
    text = "k7mx3"
    captcha = render([text], size=40, pad=10)
    result = read("ddddocr", captcha, task="text")
    assert cer(text, result.text.lower()) <= 0.2
    (line,) = result.lines
    assert line.box == [
        [0.0, 0.0],
        [captcha.width, 0.0],
        [captcha.width, captcha.height],
        [0.0, captcha.height],
    ]
    assert 0 < line.score <= 1


def test_blank_image_gives_no_lines():
    blank = Image.new("RGB", (300, 100), "white")
    for name in ("tesseract", "rapidocr"):
        result = read(name, blank)
        assert (result.lines, result.text) == ([], "")


def test_tesseract_joins_chinese_words_without_spaces():
    data = {
        "level": [5, 5, 5],
        "block_num": [1, 1, 1],
        "par_num": [1, 1, 1],
        "line_num": [1, 1, 1],
        "text": ["光学", "字符", "OCR"],
        "left": [0, 40, 90],
        "top": [5, 4, 6],
        "width": [38, 40, 30],
        "height": [20, 22, 18],
        "conf": [90, 80, -1],
    }
    (line,) = _group_lines(data)
    assert line.text == "光学字符 OCR"
    assert line.box == [[0.0, 4.0], [120.0, 4.0], [120.0, 26.0], [0.0, 26.0]]
    assert line.score == 0.85


@pytest.mark.parametrize(
    ("engine", "lang", "task", "expected_engine", "expected_lang", "expected_task"),
    [
        ("auto", "", "text", "ddddocr", "", "text"),
        ("auto", "chi_sim", "", "rapidocr", "chi_sim", "document"),
        ("auto", "eng+chi_sim", "", "rapidocr", "chi_sim+eng", "document"),
        ("auto", "eng", "", "tesseract", "eng", "document"),
        ("auto", "", "", "rapidocr", "chi_sim+eng", "document"),
        ("tesseract", "", "", "tesseract", "eng", "document"),
        ("tesseract", "eng+chi_sim", "document", "tesseract", "eng+chi_sim", "document"),
        ("ddddocr", "", "", "ddddocr", "", "text"),
    ],
)
def test_select_routes_and_normalizes(engine, lang, task, expected_engine, expected_lang, expected_task):
    chosen, options = registry.select(engine=engine, lang=lang, task=task)
    assert (chosen.name, options.lang, options.task) == (expected_engine, expected_lang, expected_task)


@pytest.mark.parametrize(
    ("engine", "lang", "task", "code"),
    [
        ("nope", "", "", "unknown_engine"),
        ("tesseract", "klingon", "", "unsupported_language"),
        ("rapidocr", "fra", "", "unsupported_language"),
        ("ddddocr", "eng", "", "unsupported_language"),
        ("tesseract", "", "text", "unsupported_task"),
        ("auto", "", "juggle", "unsupported_task"),
    ],
)
def test_select_refuses_bad_options(engine, lang, task, code):
    with pytest.raises(InvalidInput) as caught:
        registry.select(engine=engine, lang=lang, task=task)
    assert caught.value.code == code


def test_missing_tesseract_language_packs_report_unavailable(monkeypatch, tmp_path):
    monkeypatch.setenv("TESSDATA_PREFIX", str(tmp_path))  # a tessdata folder without packs
    engine = registry.get("tesseract")
    assert not engine.is_available()
    assert engine.unavailable_reason() == (
        "the Tesseract language packs are not installed (apt-get install tesseract-ocr)"
    )
    assert engine.languages() == []
    with pytest.raises(EngineUnavailable):
        registry.select(engine="tesseract")


def test_auto_falls_back_to_tesseract_when_rapidocr_is_missing(monkeypatch):
    monkeypatch.setattr(type(registry.get("rapidocr")), "unavailable_reason", lambda self: "gone")
    chosen, options = registry.select(engine="auto")
    assert (chosen.name, options.lang) == ("tesseract", "eng")


def test_models_load_once_per_process_even_under_concurrent_first_use():
    calls = []
    barrier = threading.Barrier(8)

    def factory():
        calls.append(1)
        return object()

    lazy = LazyModel(factory)
    results = []

    def worker():
        barrier.wait()
        results.append(lazy.get())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert len({id(value) for value in results}) == 1


def test_engine_singletons_keep_their_loaded_models():
    engine = registry.get("rapidocr")
    read("rapidocr", render(["warm"]))
    model = engine._model.get()
    read("rapidocr", render(["again"]))
    assert engine._model.get() is model


def test_options_are_frozen():
    with pytest.raises(AttributeError):
        Options(lang="eng", task="document").lang = "fra"


@pytest.mark.parametrize(
    ("engine", "package"), [("ddddocr", "ddddocr"), ("rapidocr", "onnxruntime"), ("tesseract", "tesserocr")]
)
def test_a_missing_python_package_makes_its_engine_unavailable(monkeypatch, engine, package):
    import sys

    monkeypatch.setitem(sys.modules, package, None)  # `import package` now raises ImportError
    chosen = registry.get(engine)
    assert not chosen.is_available()
    assert chosen.unavailable_reason() == f"the {package} package is not installed"
    with pytest.raises(EngineUnavailable):
        registry.select(engine=engine)


@pytest.mark.parametrize("threads", [1, 2, 0])
def test_ddddocr_sessions_take_the_engine_thread_setting(threads):
    """uWSGI gives each worker one engine thread; ddddocr's own sessions take one per core
    (0: onnxruntime's default), so both of its models are rebuilt with the setting."""
    engine = DdddOcrEngine(EngineConfig(threads=threads, timeout=30))
    sessions = ddddocr_lib.sessions(engine._model.get()) + ddddocr_lib.sessions(engine._detector.get())
    assert len(sessions) == 2
    for session in sessions:
        assert session.get_session_options().intra_op_num_threads == threads
    captcha = Picture(render(["k7mx3"], size=40, pad=10))
    assert cer("k7mx3", engine.recognize(captcha, Options(lang="", task="text")).text.lower()) <= 0.2
    scene, drawn = characters_scene("AK7Q", seed=2)
    found = engine.recognize(Picture(scene), Options(lang="", task="detect")).lines
    assert len(found) == len(drawn)  # the rebuilt detector still works


def test_the_registry_hands_every_engine_the_settings(settings):
    settings.OCR_ENGINE_THREADS, settings.OCR_ENGINE_TIMEOUT = 3, 7
    config = registry.engine_config()
    assert config == EngineConfig(threads=3, timeout=7)
    engines = registry.build_engines(config)
    assert list(engines) == ["tesseract", "rapidocr", "ddddocr", "zxing"]
    assert all(engine.config is config for engine in engines.values())


@pytest.mark.parametrize("name", ["tesseract", "rapidocr"])
def test_an_engine_stops_at_the_timeout_it_was_given(name):
    """The timeout is the engine's config, not a setting read at call time."""
    page = Image.new("RGB", (2000, 2600), "white")
    page.paste(render(english_lines(30, seed=3), size=40, pad=0), (100, 100))
    config = EngineConfig(threads=1, timeout=0.05)
    engine = TesseractEngine(config) if name == "tesseract" else RapidOcrEngine(config)
    if name == "rapidocr":
        engine._model = registry.get("rapidocr")._model  # the loaded model: its sessions are the same
    options = registry.select(engine=name, lang="eng")[1]
    with pytest.raises(EngineTimeout):
        engine.recognize(Picture(page), options)


# --- Tesseract in this process (tesserocr) ----------------------------------------------


class ReaderSpy:
    """Records which PyTessBaseAPI each tesseract_lib.read call used, on which thread, when."""

    def __init__(self, monkeypatch) -> None:
        self.calls: list[tuple[int, int, float, float]] = []  # (api id, thread id, start, end)
        read = tesseract_lib.read

        def spied(api, *args, **kwargs):
            start = time.monotonic()
            try:
                return read(api, *args, **kwargs)
            finally:
                self.calls.append((id(api), threading.get_ident(), start, time.monotonic()))

        monkeypatch.setattr(tesseract_lib, "read", spied)


def the_command_reads(image: Image.Image, lang: str) -> list[Line]:
    """What the service answered before tesserocr: the `tesseract` command, through pytesseract
    (kept for bench/overhead.py), grouped into lines the same way."""
    import pytesseract

    data = pytesseract.image_to_data(image, lang=lang, output_type=pytesseract.Output.DICT)
    return _group_lines(data)


@pytest.mark.parametrize(
    ("lang", "lines", "font"),
    [
        ("eng", english_lines(10, seed=4), None),
        ("eng", ["Total 1,234.56 EUR"], None),
        ("chi_sim", chinese_lines(5, chars=10), CJK_FONT),
    ],
    ids=["10-line-page", "one-line-crop", "5-line-chinese"],
)
def test_tesseract_reads_the_same_text_as_the_tesseract_command(lang, lines, font):
    image = render(lines, size=32, **({"font": font} if font else {}))
    ours = read("tesseract", image, lang).lines
    before = the_command_reads(image, lang)
    assert [line.text for line in ours] == [line.text for line in before]
    assert [line.box for line in ours] == [line.box for line in before]
    assert "\n".join(line.text for line in ours) == "\n".join(lines)


def test_tesseract_loads_the_default_language_once_and_reuses_it(monkeypatch):
    engine = TesseractEngine(EngineConfig(threads=1, timeout=30))
    engine.warm_up()
    path = tesseract_lib.datapath()
    assert (engine.readers.created, engine.readers.loaded()) == (1, {(path, "eng"): 1})
    spy = ReaderSpy(monkeypatch)
    for text in ("First call", "Second call", "Third call"):
        result = engine.recognize(Picture(render([text])), Options(lang="eng", task="document"))
        assert result.text == text
    assert len({api for api, *_ in spy.calls}) == 1  # the same PyTessBaseAPI each time
    assert (engine.readers.created, engine.readers.loaded()) == (1, {(path, "eng"): 1})


def test_two_threads_reading_at_once_each_get_their_own_text(monkeypatch):
    engine = TesseractEngine(EngineConfig(threads=1, timeout=30))
    engine.warm_up()
    spy = ReaderSpy(monkeypatch)
    texts = {0: english_lines(6, seed=21), 1: english_lines(6, seed=22)}
    images = {n: render(lines) for n, lines in texts.items()}
    barrier, answers = threading.Barrier(2), {0: [], 1: []}

    def worker(n: int) -> None:
        barrier.wait()
        for _ in range(3):
            answers[n].append(engine.recognize(Picture(images[n]), Options(lang="eng", task="document")).text)

    threads = [threading.Thread(target=worker, args=(n,)) for n in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == {n: ["\n".join(lines)] * 3 for n, lines in texts.items()}
    overlapping = [
        (a, b) for a in spy.calls for b in spy.calls if a[1] != b[1] and a[2] < b[3] and b[2] < a[3]
    ]
    assert overlapping  # the two threads did read at the same time ...
    assert all(a[0] != b[0] for a, b in overlapping)  # ... never with the same reader
    assert engine.readers.created == 2  # and each kept one: no reload per call


def test_tesseract_timeout_stops_a_long_page_and_the_next_call_works():
    page = Image.new("RGB", (2000, 2600), "white")
    page.paste(render(english_lines(30, seed=3), size=40, pad=0), (100, 100))
    engine = TesseractEngine(EngineConfig(threads=1, timeout=0.05))
    engine.warm_up()
    with pytest.raises(EngineTimeout, match=r"^Tesseract took too long on this image\.$"):
        engine.recognize(Picture(page), Options(lang="eng", task="document"))
    engine.config = EngineConfig(threads=1, timeout=30)
    result = engine.recognize(Picture(render(["After the timeout"])), Options(lang="eng", task="document"))
    assert result.text == "After the timeout"
    assert engine.readers.created == 1  # the reader that timed out, reused


def test_tesseract_keeps_a_bounded_number_of_language_sets_loaded():
    engine = TesseractEngine(EngineConfig(threads=1, timeout=30))
    assert engine.readers.max_sets == tesseract_lib.MAX_LANGUAGE_SETS
    engine.readers = tesseract_lib.Readers(max_sets=2)
    image = Picture(render(["Cycle"]))
    for lang in ("eng", "chi_sim", "eng+chi_sim", "chi_sim+eng", "eng"):
        engine.recognize(image, Options(lang=lang, task="document"))
        assert len(engine.readers.loaded()) <= 2
    assert [lang for _, lang in engine.readers.loaded()] == ["chi_sim+eng", "eng"]


def test_the_engines_endpoint_reports_the_tesseract_doing_the_reading(anon, db):
    from tesserocr import PyTessBaseAPI

    tesseract = next(e for e in anon.get("/api/engines/").json() if e["name"] == "tesseract")
    assert tesseract["version"] == PyTessBaseAPI.Version()
    assert tesseract["version"].startswith(f"{tesseract_lib.CHECKED_TESSERACT}.")


# --- RapidOCR's runtime (OCR_RAPIDOCR_RUNTIME) ------------------------------------------

CN_SCREENSHOT = "files/cnocr/multi-line_cn2.png"  # 5 lines of Chinese, truth_scope full


@pytest.fixture(scope="module")
def rapidocr_on():
    """One RapidOCR engine per runtime, built once for this module (a model load is seconds)."""
    engines = {
        runtime: RapidOcrEngine(EngineConfig(threads=1, timeout=30, rapidocr_runtime=runtime))
        for runtime in ("openvino", "onnxruntime")
    }
    return lambda runtime: engines[runtime]


def read_with(engine: RapidOcrEngine, image: Image.Image) -> list[str]:
    return [line.text for line in engine.recognize(Picture(image), Options(lang="", task="document")).lines]


@pytest.mark.parametrize("runtime", ["openvino", "onnxruntime"])
def test_rapidocr_runs_on_the_runtime_its_config_names(rapidocr_on, runtime):
    engine = rapidocr_on(runtime)
    lines = english_lines(3, seed=4)
    assert cer("\n".join(lines), "\n".join(read_with(engine, render(lines)))) <= 0.05
    assert engine.runtime() == {"name": runtime, "version": importlib.metadata.version(runtime)}
    wrapper = {"openvino": deadline.CancellableInferRequest, "onnxruntime": deadline.CancellableSession}
    assert [type(stage) for stage in rapidocr_lib.sessions(engine._model.get().model)] == [
        wrapper[runtime]
    ] * 3


def test_rapidocr_falls_back_to_onnxruntime_when_openvino_cannot_load(monkeypatch, caplog):
    import openvino

    def broken(self, *args, **kwargs):
        raise RuntimeError("no CPU plugin here")

    monkeypatch.setattr(openvino.Core, "compile_model", broken)
    engine = RapidOcrEngine(EngineConfig(threads=1, timeout=30, rapidocr_runtime="openvino"))
    assert engine.runtime()["name"] == "openvino"  # what it will try, before loading
    with caplog.at_level(logging.WARNING, logger="app.engines.rapidocr"):
        assert read_with(engine, render(["Fallen back"])) == ["Fallen back"]
    assert engine.runtime() == {"name": "onnxruntime", "version": importlib.metadata.version("onnxruntime")}
    assert [record.getMessage() for record in caplog.records] == [
        "RapidOCR cannot run on openvino (no CPU plugin here); running on onnxruntime instead."
    ]


def test_rapidocr_reports_onnxruntime_before_loading_when_openvino_is_missing(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "openvino", None)
    engine = RapidOcrEngine(EngineConfig(threads=1, timeout=30, rapidocr_runtime="openvino"))
    assert engine.runtime()["name"] == "onnxruntime"


def test_rapidocr_refuses_an_unknown_runtime():
    with pytest.raises(ValueError, match="RapidOCR runs on openvino or onnxruntime, not 'tensorrt'"):
        RapidOcrEngine(EngineConfig(threads=1, timeout=30, rapidocr_runtime="tensorrt"))


def drawn_page() -> Image.Image:
    return render(english_lines(6, seed=21) + chinese_lines(3, chars=10), font=CJK_FONT)


@pytest.mark.parametrize("source", ["drawn", "corpus"])
def test_both_runtimes_read_the_same_text(rapidocr_on, source):
    if source == "drawn":
        image, truth = drawn_page(), None
    else:
        truth = corpus.entry(CN_SCREENSHOT)["truth"]
        image = Image.open(io.BytesIO(corpus.data(CN_SCREENSHOT))).convert("RGB")
    openvino_lines = read_with(rapidocr_on("openvino"), image)
    assert openvino_lines == read_with(rapidocr_on("onnxruntime"), image)
    assert len(openvino_lines) >= 5
    if truth is not None:
        assert cer(truth.replace("\n", ""), "".join(openvino_lines)) <= 0.1


def test_the_timeout_stops_an_openvino_run_and_the_next_call_works(rapidocr_on):
    page = Image.new("RGB", (2000, 2600), "white")
    page.paste(render(english_lines(30, seed=3), size=40, pad=0), (100, 100))
    loaded = rapidocr_on("openvino")
    loaded.warm_up()  # the model is loaded outside the timed call
    engine = RapidOcrEngine(EngineConfig(threads=1, timeout=0.2, rapidocr_runtime="openvino"))
    engine._model = loaded._model  # the loaded model: its requests are the same
    with pytest.raises(EngineTimeout) as stopped:
        engine.recognize(Picture(page), Options(lang="", task="document"))
    # Stopped, not noticed late (a finished run raises nothing): an inference was cancelled,
    # or, on a busy machine, the time was up before the next one could start.
    cause = str(stopped.value.__cause__)
    assert "Infer Request was canceled" in cause or "TimeoutError: the engine's time is up" in cause
    assert read_with(loaded, render(["Next call"])) == ["Next call"]  # the same requests, 30 s


def test_the_engines_endpoint_shows_each_runtime(anon, db):
    engines = {engine["name"]: engine for engine in anon.get("/api/engines/").json()}
    runtime = registry.get("rapidocr").runtime()["name"]
    assert runtime == "onnxruntime"  # the default (OpenVINO in f32 is no faster and holds more memory)
    assert engines["rapidocr"]["runtime"] == {"name": "onnxruntime", "version": "1.31.1"}
    assert engines["ddddocr"]["runtime"] == {"name": "onnxruntime", "version": "1.31.1"}
    assert engines["tesseract"]["runtime"] is None
