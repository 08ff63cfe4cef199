"""Every command answers --help; doctor reports providers, models and cameras."""
import subprocess
import sys

import pytest

import main
from tests.conftest import REPO

COMMANDS = ([[name] for name, _, _ in main.COMMANDS] + [["train", name] for name, _, _ in main.TRAIN_COMMANDS]
            + [[command, name] for command, nested in main.NESTED.items() for name, _, _ in nested])


def test_entry_point_help_runs_as_a_script():
    out = subprocess.run([sys.executable, "main.py", "--help"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "usage: main.py" in out.stdout and "audit" in out.stdout


@pytest.mark.parametrize("cmd", COMMANDS, ids=" ".join)
def test_help(cmd, capsys):
    with pytest.raises(SystemExit) as done:
        main.main([*cmd, "--help"])
    assert done.value.code == 0
    assert f"usage: main.py {' '.join(cmd)}" in capsys.readouterr().out


def test_doctor(capsys):
    assert main.main(["doctor", "--cameras", "1"]) == 0
    out = capsys.readouterr().out
    assert "ONNX Runtime" in out and "CUDA devices visible" in out and "models in" in out and "cameras" in out


def test_doctor_fails_where_a_default_model_cannot_be_used_as_doctor_cards_does(capsys, monkeypatch, tmp_path,
                                                                             tiny_models):
    """A setup check built on `main.py doctor` passed (status 0) with a default model it named UNUSABLE."""
    import shutil

    from inference import doctor

    shutil.copy(tiny_models["classifier"], tmp_path / "good.onnx")
    monkeypatch.setattr(doctor, "MODELS_DIR", tmp_path)
    assert main.main(["doctor", "--cameras", "0", "--no-gpu-probe"]) == 0
    (tmp_path / "cut.onnx").write_bytes((tmp_path / "good.onnx").read_bytes()[:3000])
    capsys.readouterr()
    assert main.main(["doctor", "--cameras", "0", "--no-gpu-probe"]) == 1
    out, err = capsys.readouterr()
    assert "cut.onnx: UNUSABLE — " in out and "1 default model(s) cannot be used" in err
    assert main.main(["doctor", "--cards"]) == 1


def test_doctor_fails_where_no_default_classifier_is_there(capsys, monkeypatch, tmp_path, tiny_models):
    """A models folder of a filter alone passed (status 0), and `bench` then stopped with "no classifier found"."""
    import shutil

    from inference import doctor

    shutil.copy(tiny_models["identity"], tmp_path / "filter.onnx")
    monkeypatch.setattr(doctor, "MODELS_DIR", tmp_path)
    for argv in (["doctor", "--cameras", "0", "--no-gpu-probe"], ["doctor", "--cards"]):
        capsys.readouterr()
        assert main.main(argv) == 1, argv
        assert f"no usable default classifier in {tmp_path}" in capsys.readouterr().err


def test_doctor_train_fails_where_a_compile_it_tried_failed(capsys, monkeypatch):
    """scripts/device_measure compile checks `doctor train --try-compile`, which said FAILED and exited 0."""
    from training import doctor

    monkeypatch.setattr(doctor, "mode_checks", lambda *a, **k: [doctor.ModeCheck("default", True, "a stub")])
    monkeypatch.setattr(doctor, "try_compile", lambda mode, device: "IndexError: a stub")
    assert main.main(["doctor", "train", "--try-compile"]) == 1
    assert "FAILED — IndexError: a stub" in capsys.readouterr().out
    monkeypatch.setattr(doctor, "try_compile", lambda mode, device: None)
    assert main.main(["doctor", "train", "--try-compile"]) == 0


def test_user_errors_are_one_line_not_tracebacks(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage")
    code = main.main(["train", "evaluate", "--model", str(bad), "--dataset", f"folder:{tmp_path}"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and str(tmp_path) in err


@pytest.mark.parametrize("missing, package", [("cv2", "opencv-python"), ("skimage", "scikit-image")])
def test_a_missing_dependency_is_named_not_a_traceback(missing, package):
    """A Python without the project's packages (not the .venv): which one, and how to set up."""
    code = f"import sys; sys.modules[{missing!r}] = None; import main; sys.exit(main.main(['audit', '--help']))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"no module '{missing}' (pip package {package})" in out.stderr and "scripts/setup" in out.stderr


def test_doctor_cards_prints_every_default_model_as_markdown(capsys):
    from inference.defaults import MODELS_DIR

    assert main.main(["doctor", "--cards"]) == 0
    out = capsys.readouterr().out
    for path in MODELS_DIR.glob("*.onnx"):
        assert f"`{path.name}`" in out
    assert "| gender×race | n | accuracy [95% CI] | FPR | FNR |" in out


def test_doctor_cards_names_an_unusable_file_and_prints_the_others(capsys, monkeypatch, tmp_path, tiny_models):
    """One broken file stopped the listing before any card was printed."""
    import shutil

    from inference import doctor

    shutil.copy(tiny_models["classifier"], tmp_path / "b_good.onnx")
    (tmp_path / "a_text.onnx").write_text("hello")
    monkeypatch.setattr(doctor, "MODELS_DIR", tmp_path)
    assert main.main(["doctor", "--cards"]) == 1
    out = capsys.readouterr().out
    assert "## a_text.onnx\n\nUNUSABLE — " in out and "not a readable ONNX model" in out
    assert "`b_good.onnx`" in out


def test_doctor_train_says_which_compile_modes_this_machine_can_run(capsys, monkeypatch):
    import torch

    from training import doctor

    assert main.main(["doctor", "train"]) == 0
    out = capsys.readouterr().out
    assert f"PyTorch {torch.__version__}" in out and "--precision auto here:" in out
    modes = dict(line.split()[:2] for line in out.splitlines() if line.startswith("  ") and "needs" in line)
    assert set(modes) == set(doctor.COMPILE_MODES) and modes["off"] == modes["trace-only"] == "ready"
    if not torch.cuda.is_available():
        assert modes["cudagraphs"] == "not" and "none visible" in out


@pytest.mark.parametrize("gpu,compiler,triton,ready", [
    (False, "/usr/bin/g++", False, {"default", "reduce-overhead"}),
    (False, None, True, set()),  # Inductor on the CPU writes C++: no compiler, no default
    (True, None, False, {"cudagraphs"}),  # on a GPU without Triton only CUDA graphs of the traced step run
    (True, None, True, {"default", "reduce-overhead", "cudagraphs"}),
])
def test_what_each_compile_mode_needs(gpu, compiler, triton, ready):
    from training.doctor import mode_checks

    checks = {c.mode: c for c in mode_checks(gpu, compiler, triton)}
    assert {m for m, c in checks.items() if c.ready} == ready | {"off", "trace-only"}
    if not gpu and compiler is None:
        assert "install g++" in checks["default"].why
    if gpu and not triton:
        assert "--compile cudagraphs" in checks["default"].why


def test_a_compile_that_fails_is_reported_in_one_line(monkeypatch):
    import torch

    from training import compile_step, doctor

    assert doctor.try_compile("trace-only", torch.device("cpu")) is None

    def no_code_generator(graph, example_inputs):
        raise RuntimeError("No working C++ compiler found")

    monkeypatch.setitem(compile_step.COMPILE_MODES, "broken", {"backend": no_code_generator})
    why = doctor.try_compile("broken", torch.device("cpu"))
    assert "No working C++ compiler found" in why and "\n" not in why


@pytest.mark.parametrize("argv,what", [(["doctor", "--no-gpu-probe", "train"], "train"),
                                       (["bench", "--no-baseline", "detect", "--per-group", "2"], "detect"),
                                       (["bench", "--no-baseline", "train"], "train")])
def test_a_bench_or_doctor_what_after_options_is_told_where_it_goes(argv, what, capsys):
    """Options of the plain command before the WHAT ran it without its own options, to a traceback."""
    with pytest.raises(SystemExit) as exc:
        main.main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and f"put '{what}' right after '{argv[0]}'" in err and "Traceback" not in err


@pytest.mark.parametrize("argv,says", [
    (["bench", "detetc", "--per-group", "5"], "unknown bench command 'detetc' (did you mean 'detect'?)"),
    (["doctor", "trian", "--try-compile"], "unknown doctor command 'trian' (did you mean 'train'?)"),
    (["bench", "banana"], "unknown bench command 'banana': main.py bench runs alone or as bench detect or bench train")])
def test_a_misspelled_bench_or_doctor_what_is_named_whatever_follows_it(argv, says, capsys):
    """With options after it, the typo was reported as "unrecognized option --per-group", the plain command's."""
    with pytest.raises(SystemExit) as exc:
        main.main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and says in err and "unrecognized option" not in err


def test_a_value_named_like_a_what_is_a_value(tmp_path, capsys, monkeypatch):
    (tmp_path / "train").mkdir()  # `bench --source train`: a folder, not the WHAT
    monkeypatch.chdir(tmp_path)
    for argv in (["bench", "--source", "train"], ["bench", "--sou", "train"]):
        assert main.main([*argv, "--frames", "1"]) == 2
        assert "no readable images in the folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # the WHAT in its place, and a value named like it after
        main.main(["bench", "train", "--json", "train", "--help"])
    assert exc.value.code == 0 and "put 'train'" not in capsys.readouterr().err



def test_a_missing_package_is_named_as_pyproject_declares_it():
    """The hint named opencv-python-headless (which conflicts with the declared opencv-python) and PySide6."""
    tomllib = pytest.importorskip("tomllib", reason="Python 3.10, which the project supports, has no tomllib (3.11)")
    declared = " ".join(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"])
    for module in ("cv2", "PySide6", "skimage", "onnxruntime"):
        package = main.missing_module_message(ModuleNotFoundError(name=module)).split("(pip package ")[1].split(")")[0]
        assert package in declared, (module, package)


@pytest.mark.parametrize("argv,option", [(["bench", "--soruce", "/tmp"], "--soruce"), (["doctor", "--camras", "0"], "--camras")])
def test_a_misspelled_option_of_bench_or_doctor_is_named(argv, option, capsys):
    """Its value was taken for the WHAT: "argument WHAT: invalid choice: '/tmp'"."""
    with pytest.raises(SystemExit) as exc:
        main.main(argv)
    assert exc.value.code == 2 and f"unrecognized option {option}" in capsys.readouterr().err


def test_doctor_train_reports_the_compiler_inductor_uses_not_a_fallback_to_g_plus_plus(tmp_path):
    """CXX naming a missing compiler was passed over for /usr/bin/g++ and the CPU modes shown ready; Inductor uses
    $CXX alone (torch._inductor.config.cpp.cxx) and failed at the first training step with InvalidCxxCompiler."""
    import os

    env = {**os.environ, "CXX": str(tmp_path / "nonexistent" / "g++")}
    out = subprocess.run([sys.executable, "main.py", "doctor", "train"], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = {line.split()[0]: line for line in out.stdout.splitlines() if line.startswith("  ") and "needs" in line}
    for mode in ("default", "reduce-overhead"):
        assert lines[mode].split()[1] == "not", lines[mode]
        if "Triton" not in lines[mode]:  # on the CPU: the compiler is what it needs
            assert f"$CXX names {env['CXX']}, which isn't found" in lines[mode] and "unset it" in lines[mode]


def test_the_cxx_compiler_is_found_as_inductor_finds_it(tmp_path, monkeypatch):
    """The first of Inductor's search that answers --version, no other name; $CXX that doesn't run is named."""
    from training import doctor

    works, broken = tmp_path / "works", tmp_path / "broken"
    works.write_text('#!/bin/sh\necho "fake 1.0"\n')
    broken.write_text("#!/bin/sh\nexit 1\n")
    works.chmod(0o755)
    broken.chmod(0o755)
    monkeypatch.delenv("TORCH_INDUCTOR_INSTALL_GXX", raising=False)
    monkeypatch.setenv("CXX", str(broken))
    found = doctor.find_cxx_compiler((None, str(broken)))
    assert found.command is None and f"$CXX names {broken}, which doesn't run" in found.problem
    assert doctor.find_cxx_compiler((None, str(broken), str(works))).command == str(works)
    monkeypatch.delenv("CXX")
    assert doctor.find_cxx_compiler((None, str(tmp_path / "absent"))).command is None
    checks = {c.mode: c for c in doctor.mode_checks(False, None, False, found.problem)}
    assert not checks["default"].ready and "fix CXX or unset it" in checks["default"].why


def test_a_failed_compile_on_the_cpu_suggests_no_gpu_only_mode(monkeypatch):
    """A CPU-only machine was told to try '--compile cudagraphs on a GPU without Triton'."""
    import torch

    from training import compile_step, doctor

    def no_code_generator(graph, example_inputs):
        raise RuntimeError("No working C++ compiler found")

    monkeypatch.setitem(compile_step.COMPILE_MODES, "broken", {"backend": no_code_generator})
    why = doctor.try_compile("broken", torch.device("cpu"))
    assert "No working C++ compiler found" in why and "--compile off" in why and "cudagraphs" not in why


# --- scripts/: --help answers, unknown arguments are refused, and neither does anything -------------------------
# scripts/test is left out: every argument it takes is pytest's. scripts/app answers --help itself (before setup);
# its other arguments are main.py's, which refuses what it does not know.
HEAVY = ("python3", "python", "pip", "pip3", "curl", "wget", "conda", "nvidia-smi", "torchrun", "timeout", "git",
         "split", "sha256sum", "rm", "mkdir", "cp", "du", "find", "tee")
SCRIPT_HELP = ["app", "setup", "ort_gpu_parts", "device_ort_gpu_install", "device_measure", "pack_faces"]


def _sandboxed_script(tmp_path, script, *args):
    """Run a copy of scripts/``script`` in an empty checkout whose heavy commands are fakes that log being called;
    returns the result, what the fakes logged, and whether the checkout changed."""
    import os
    import shutil

    repo = tmp_path / "repo"
    shutil.copytree(REPO / "scripts", repo / "scripts")
    (repo / ".ortgpu").mkdir()
    (repo / ".ortgpu" / "manifest").write_text("wheel w.whl 3 abc\npart part-00 3 abc\n")
    (tmp_path / "shared" / "datasets" / "utkface" / "UTKFace").mkdir(parents=True)  # pack_faces' SRC exists
    fakes, log = tmp_path / "fakes", tmp_path / "called.log"
    fakes.mkdir()
    for name in HEAVY:
        (fakes / name).write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\nexit 0\n')
        (fakes / name).chmod(0o755)
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    env = {**os.environ, "PATH": f"{fakes}:{os.environ['PATH']}", "PYTHON": str(fakes / "python3"),
           "OUT": str(tmp_path / "out")}
    out = subprocess.run(["bash", str(repo / "scripts" / script), *args], cwd=repo, env=env, capture_output=True,
                         text=True, timeout=30)
    after = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p != log)
    return out, log.read_text() if log.exists() else "", before != after


@pytest.mark.parametrize("script", SCRIPT_HELP)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_every_script_answers_help_without_doing_anything(script, flag, tmp_path):
    """`bash scripts/ort_gpu_parts --help` started a 255 MB pip download into .ortgpu/wheel."""
    out, called, changed = _sandboxed_script(tmp_path, script, flag)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"usage: bash scripts/{script}"), out.stdout
    assert called == "" and not changed


@pytest.mark.parametrize("script,args", [
    ("setup", ["--bogus"]), ("ort_gpu_parts", ["--bogus"]), ("ort_gpu_parts", ["1.31.1"]),
    ("device_ort_gpu_install", ["--bogus"]), ("device_ort_gpu_install", ["--status", "extra"]),
    ("device_measure", ["--bogus"]), ("device_measure", ["quick", "--bogus"]), ("device_measure", ["quick", "--dry-run", "x"]),
    ("pack_faces", ["--bogus"]), ("pack_faces", ["lots"]), ("pack_faces", ["1", "2", "d", "s", "extra"]),
])
def test_a_script_refuses_an_unknown_argument_with_its_usage(script, args, tmp_path):
    out, called, changed = _sandboxed_script(tmp_path, script, *args)
    assert out.returncode != 0 and f"usage: bash scripts/{script}" in out.stderr, (out.stdout, out.stderr)
    assert called == "" and not changed


def test_every_script_in_scripts_is_covered_by_the_help_test():
    assert sorted(p.name for p in (REPO / "scripts").iterdir()) == sorted([*SCRIPT_HELP, "test"])


def test_doctor_cards_tables_keep_their_columns_for_gender_by_race_groups(capsys):
    """"female|Asian" went into the classifiers' Markdown tables unescaped: GitHub split each such row into one
    column more than its header, so docs/models.md showed the intersectional groups' figures shifted."""
    import itertools
    import re

    assert main.main(["doctor", "--cards"]) == 0
    lines = capsys.readouterr().out.splitlines()
    tables = [list(rows) for is_row, rows in itertools.groupby(lines, lambda ln: ln.startswith("|")) if is_row]
    assert any("female\\|Asian" in ln for t in tables for ln in t)
    for table in tables:
        cells = [len(re.split(r"(?<!\\)\|", ln)) for ln in table]
        assert cells == [cells[0]] * len(cells), table


def test_a_mistyped_command_is_named_with_the_commands(capsys):
    """`main.py trian classifier` went to the app, which said "unrecognized arguments: trian classifier"."""
    for argv in (["trian", "classifier"], ["-v", "trian"]):
        with pytest.raises(SystemExit) as exc:
            main.main(argv)
        err = capsys.readouterr().err
        assert exc.value.code == 2, err
        assert ("error: unknown command 'trian' (did you mean 'train'?) — commands: app, run, audit, bench, doctor, "
                "train") in err
    assert main.unknown_command_problem(["--source", "x"]) is None  # no command: the app, as before
    with pytest.raises(SystemExit) as exc:
        main.main(["--source", "x", "--help"])
    assert exc.value.code == 0 and "usage: main.py app" in capsys.readouterr().out


@pytest.mark.parametrize("argv,option,close", [
    (["audit", "--datset", "utkface:/nonexistent", "--out", "x"], "--datset", "--dataset"),
    (["train", "classifier", "--datset=utkface:/nonexistent", "--out", "x"], "--datset", "--dataset"),
    (["run", "--source", "x", "--bogus-flag"], "--bogus-flag", None),
])
def test_an_unknown_option_is_named_before_a_missing_required_one(argv, option, close, capsys):
    """argparse reports missing required options first: `audit --datset X` said only that --dataset is required."""
    with pytest.raises(SystemExit) as exc:
        main.main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and f"unrecognized option {option} (" in err and "required" not in err, err
    assert (f"did you mean {close}?" in err) if close else "did you mean" not in err
    assert f"main.py {argv[0]}" in err and "--help lists them" in err


def test_the_summary_of_an_audit_of_no_readable_image_points_at_the_unreadable_list(tmp_path, tiny_models, capsys):
    """It said "No faces were found … see the list of images without a face", a list left empty: the images were
    listed as unreadable."""
    import json

    utk = tmp_path / "utk"
    utk.mkdir()
    for i in range(3):
        (utk / f"2{i}_{i % 2}_0_2017010100000000{i}.jpg.chip.jpg").write_bytes(b"not a jpeg %d" % i)
    out = tmp_path / "out"
    code = main.main(["audit", "--dataset", f"utkface:{utk}", "--classifier", str(tiny_models["classifier"]),
                      "--no-filter", "--no-progress", "--no-html", "--threads", "1", "--out", str(out)])
    report = json.loads((out / "report.json").read_text())
    summary = " ".join(report["summary"])
    assert code == 2 and report["audit"]["labelled"] and len(report["images"]["unreadable"]) == 3
    assert "None of the 3 image(s) could be read" in summary and "list of unreadable images" in summary
    assert "images without a face" not in summary and "No faces were found" not in summary
    capsys.readouterr()


def test_the_summary_of_no_face_found_names_both_lists_where_some_images_were_unreadable():
    from inference.audit.summary import summary_lines

    report = {"audit": {"dataset": "folder:x", "labelled": False}, "detection": None,
              "images": {"n_images": 3, "n_faces": 0, "n_with_faces": 0, "no_face": ["a.png", "b.png"],
                         "unreadable": [{"file": "c.png", "error": "unreadable"}]}}
    line = summary_lines(report)[-1]
    assert line.startswith("No faces were found in any of the 2 readable image(s), and 1 could not be read")
    assert "list of images without a face and the list of unreadable images" in line


def test_main_pys_own_option_after_the_command_is_told_where_it_goes(capsys):
    with pytest.raises(SystemExit) as exc:
        main.main(["audit", "--verbose", "--dataset", "folder:x", "--out", "y"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "--verbose is main.py's own option: give it before the command" in err, err
