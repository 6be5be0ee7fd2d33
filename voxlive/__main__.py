from voxlive.cli import main

raise SystemExit(main())
