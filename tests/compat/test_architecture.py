"""The layering rules of docs/architecture.md, read from the package manifest: a dependency that breaks them fails
here before it spreads."""
import json
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CAPABILITIES = {"KilnTracking", "KilnRegistry", "KilnTraining", "KilnServing", "KilnJobs", "KilnBundles", "KilnIdentity", "KilnAudit", "KilnCatalog", "KilnFeatures"}
ENGINE = {"KilnCore", "KilnBlob", "KilnStore", "KilnStoreSQLite", "KilnParquet", "KilnLake", "KilnFrame", "KilnSQL", "KilnLearn",
          "KilnModelFormat", "KilnPython", "KilnBlobConformance"}


def manifest():
    out = subprocess.run(["swift", "package", "dump-package"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    targets = {}
    for t in json.loads(out)["targets"]:
        deps = set()
        for d in t.get("dependencies", []):
            for kind in ("byName", "target", "product"):
                if kind in d:
                    deps.add(d[kind][0])
        targets[t["name"]] = (t["type"], deps)
    return targets


def test_dependencies_follow_the_layers():
    targets = manifest()
    assert CAPABILITIES | ENGINE | {"KilnPlatform", "KilnServer"} <= set(targets), "a target of the picture is missing"
    for name, (kind, deps) in targets.items():
        if kind == "test" or name in ("kiln", "KilnServer", "KilnWeb", "KilnTestSupport"):
            continue
        assert not deps & {"KilnServer", "KilnWeb", "Hummingbird", "HummingbirdCore", "ArgumentParser", "kiln"}, f"{name} depends on {deps}"
    # The web UI is HTTP like KilnServer, beside it: KilnServer registers it, it knows nothing of KilnServer or the CLI.
    assert not targets["KilnWeb"][1] & {"KilnServer", "kiln", "ArgumentParser", "KilnPlatform"}, targets["KilnWeb"][1]
    assert not {d for d in targets["KilnParquet"][1] if d.startswith("Kiln")}, "KilnParquet must depend on no Kiln target"
    assert not {d for d in targets["KilnCore"][1] if d.startswith("Kiln")}, "KilnCore must depend on no other Kiln target"
    for name in CAPABILITIES:
        others = targets[name][1] & (CAPABILITIES - {name})
        assert not others, f"{name} depends on the capabilities {others}: declare a protocol and wire it in KilnPlatform"
    # Work across capabilities on a caller's behalf composes them below the wiring: it never reaches up to it.
    assert not targets["KilnDelegation"][1] & {"KilnPlatform", "KilnServer", "KilnWeb"}, targets["KilnDelegation"][1]
    for name in ENGINE:
        above = targets[name][1] & (CAPABILITIES | {"KilnPlatform"})
        assert not above, f"the engine target {name} depends on {above}"
