-------------------------------------------------------------------------------
-- /etc/tether/lsr/config.lua: configuration of tether-lsr.service
-- (ExecStart: tether-lsr -cfg /etc/tether/lsr/config.lua). ThingWorx LSR format.
-- Templates are looked up in custom/templates/ next to this file
-- (/etc/tether/lsr/custom/templates/), then templates/, then here.
-------------------------------------------------------------------------------

scripts.log_level = "INFO"

-- The EMS ("rap") local REST interface (tether-ems http_server).
scripts.rap_host = "127.0.0.1"
scripts.rap_port = "8000"
scripts.rap_ssl = false
scripts.rap_validate = false
scripts.rap_server_authenticate = false

-- The script resource's own HTTP server, called by the EMS.
scripts.script_resource_host = "127.0.0.1"
scripts.script_resource_port = "8001"
scripts.script_resource_ssl = false
scripts.script_resource_authenticate = false

-- Tether extensions (ignored by the ThingWorx LSR): sandbox limits.
scripts.lua_instruction_limit = 50000000
scripts.lua_memory_limit = 67108864
scripts.lua_call_timeout = 10000

-------------------------------------------------------------------------------
-- Edge Things: 'file' and 'template' are required. The thing must exist on the
-- platform (tether-platform admin ... thing add LsrThing).
-------------------------------------------------------------------------------
scripts.LsrThing = {
    file = "thing.lua",
    template = "example",
    scanRate = 5000,
    taskRate = 5000,
    keepAliveRate = 30000,
}
