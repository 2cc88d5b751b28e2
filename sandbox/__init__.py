"""The sandbox: a local test VPS and the images it runs, for tests, benchmarks and the demo only.

Production code (the `fikaso` package) never imports this package; it reaches the test VPS as it
reaches any host, through the ssh_config file `fab sandbox.up` writes (fikaso.ssh_config in
fabric.yaml). The folders beside these modules are the images' build contexts (README.md).
"""
