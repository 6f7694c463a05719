from tactful.cli.main import main

raise SystemExit(main())
