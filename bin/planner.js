#!/usr/bin/env node
// `planner` CLI (package.json "bin"): runs the TypeScript entry through tsx's CommonJS hook.
'use strict';
require('tsx/cjs');
require('../src/cli/main.ts').main();
