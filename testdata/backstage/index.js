// A minimal real Backstage backend for backstage-mcp's end-to-end tests:
// the software catalog plus Backstage's own MCP actions endpoint.
// Configuration comes from app-config.yaml in the working directory.
'use strict';

const { createBackend } = require('@backstage/backend-defaults');

const backend = createBackend();
backend.add(require('@backstage/plugin-catalog-backend'));
backend.add(require('@backstage/plugin-mcp-actions-backend'));
backend.start();
