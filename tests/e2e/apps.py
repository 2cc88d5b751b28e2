"""Variants of the example app, made in scratch folders, for deploys that succeed, fail or dawdle."""
import shutil
from pathlib import Path

from .helpers import ROOT

EXAMPLE = ROOT / "examples" / "laravel-app"
VIEW = "resources/views/panel.blade.php"
CONTROLLER = "app/Http/Controllers/PanelController.php"


def variant(folder: Path, marker: str) -> Path:
    """The example app whose page carries `marker`."""
    app = folder / marker
    shutil.copytree(EXAMPLE, app, ignore=shutil.ignore_patterns("vendor", "storage", ".env"))
    view = app / VIEW
    view.write_text(view.read_text().replace("<dl>", f'<p id="version">{marker}</p>\n    <dl>'))
    return app


def with_failing_health(app: Path) -> Path:
    controller = app / CONTROLLER
    controller.write_text(controller.read_text().replace('return response("ok\\n", 200)',
                                                         'return response("broken\\n", 500)'))
    return app


def without_health_route(app: Path) -> Path:
    """As an app from before Laravel 11, whose skeleton has no /up route."""
    routes = app / "routes" / "web.php"
    routes.write_text(routes.read_text().replace("Route::get('/up', [PanelController::class, 'up']);\n", ""))
    return app


def with_migration(app: Path, name: str, body: str) -> Path:
    (app / "database" / "migrations" / f"{name}.php").write_text(
        "<?php\n\nuse Illuminate\\Database\\Migrations\\Migration;\n\n"
        f"class {''.join(part.title() for part in name.split('_')[4:])} extends Migration\n{{\n"
        f"    public function up()\n    {{\n        {body}\n    }}\n\n    public function down()\n    {{\n    }}\n}}\n")
    return app


def with_slow_health(app: Path, seconds: float) -> Path:
    """Its health check answers only after `seconds`: a deploy's switch takes that long at least."""
    controller = app / CONTROLLER
    controller.write_text(controller.read_text().replace('return response("ok\\n", 200)',
                                                         f'usleep({int(seconds * 1_000_000)});\n'
                                                         '        return response("ok\\n", 200)'))
    return app
