"""Fikaso Deploy: `fab --list` shows the tasks, `fab --help TASK` explains one."""
import sys
from pathlib import Path

import yaml
from invoke import Collection

from tasks import (alerts, backup, certs, db, demo, deploy, doctor, host, lock, maintenance, sandbox, scale, secrets, setup,
                   status)

# Invoke would meet a YAML syntax error in fabric.yaml with a traceback; say what to fix instead.
try:
    yaml.safe_load((Path(__file__).parent / "fabric.yaml").read_text())
except FileNotFoundError:
    pass
except yaml.YAMLError as error:
    sys.exit(f"Error: fabric.yaml is not valid YAML: {str(error).replace(chr(10), ' ')}. "
             "Fix the syntax at the place shown (indentation with spaces, a space after each colon).")

namespace = Collection(setup.setup, deploy.deploy, deploy.rollback, deploy.releases, status.status, status.logs,
                       scale.scale, demo.demo, doctor.doctor)
namespace.add_collection(Collection.from_module(secrets), name="secrets")
namespace.add_collection(Collection.from_module(host), name="host")
namespace.add_collection(Collection.from_module(sandbox), name="sandbox")
namespace.add_collection(Collection.from_module(lock), name="lock")
namespace.add_collection(Collection.from_module(backup), name="backup")
namespace.add_collection(Collection.from_module(db), name="db")
namespace.add_collection(Collection.from_module(maintenance), name="maintenance")
namespace.add_collection(Collection.from_module(certs), name="certs")
namespace.add_collection(Collection.from_module(alerts), name="alerts")
