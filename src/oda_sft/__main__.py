from oda_sft.cli import main

raise SystemExit(main())
