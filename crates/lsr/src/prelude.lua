-- Tether LSR prelude: the host API seen by templates (ThingWorx LSR compatible subset).
-- Runs once per thing state, after the Rust host functions are installed:
--   __tether_log(level, tag, message), __tether_now_ms(), __tether_dirty (table)

local host_log = __tether_log
local now_ms = __tether_now_ms
local format, select, tostring, type, pairs, ipairs, rawget, rawset, setmetatable, getmetatable =
  string.format, select, tostring, type, pairs, ipairs, rawget, rawset, setmetatable, getmetatable

local function log_at(level)
  return function(tag, fmt, ...)
    local msg = fmt
    if select('#', ...) > 0 and type(fmt) == "string" then
      local ok, s = pcall(format, fmt, ...)
      msg = ok and s or fmt
    end
    host_log(level, tostring(tag), tostring(msg))
  end
end

log = {
  trace = log_at("TRACE"), debug = log_at("DEBUG"), info = log_at("INFO"),
  warn = log_at("WARN"), error = log_at("ERROR"), force = log_at("FORCE"),
  audit = log_at("AUDIT"),
}

print = function(...)
  local parts = {}
  for i = 1, select('#', ...) do parts[#parts + 1] = tostring((select(i, ...))) end
  host_log("INFO", "print", table.concat(parts, "\t"))
end

-- metadata constructors: serviceDefinitions.S(input{...}, output{...}, description{"..."})
function input(t) return { __tether_kind = "input", def = t } end
function output(t) return { __tether_kind = "output", def = t } end
function description(t)
  if type(t) == "table" then t = t[1] end
  return { __tether_kind = "description", text = t }
end
function private(t)
  if type(t) == "table" then t = t[1] end
  return { __tether_kind = "private", flag = t }
end

-- DataShape.Name:clone() and tw_infotable.createInfoTable(ds), as in the ThingWorx LSR.
local shape_methods = {}
shape_methods.__index = shape_methods
function shape_methods.clone(ds)
  local copy = {}
  for i, f in ipairs(ds) do
    local c = {}
    for k, v in pairs(f) do c[k] = v end
    copy[i] = c
  end
  return setmetatable(copy, shape_methods)
end

local infotable_methods = {}
infotable_methods.__index = infotable_methods
function infotable_methods.addRow(it, row)
  if type(row) ~= "table" then return false, "row must be a table" end
  local fields = it.dataShape.fieldDefinitions
  local r = {}
  for k, v in pairs(row) do
    if fields[k] == nil then
      return false, format("field '%s' is not in the data shape", tostring(k))
    end
    if type(v) == "table" and getmetatable(v) == infotable_methods then v = v:toTable() end
    r[k] = v
  end
  it.rows[#it.rows + 1] = r
  return true
end
function infotable_methods.toTable(it)
  return { dataShape = it.dataShape, rows = it.rows }
end

tw_infotable = {
  createInfoTable = function(ds)
    local defs = {}
    for i, f in ipairs(ds or {}) do
      defs[f.name] = {
        name = f.name, baseType = f.baseType, description = f.description or "",
        ordinal = f.ordinal or i, aspects = f.aspects or {},
      }
    end
    return setmetatable({ dataShape = { fieldDefinitions = defs }, rows = {} }, infotable_methods)
  end,
}

-- Events are not forwarded yet: say so instead of dropping them silently.
-- server.fireEvent(name, infotable): POST <thing>/Events/<name> to the EMS.
local fire_event = __tether_fire_event
local invoke = __tether_invoke
server = {
  fireEvent = function(name, data)
    if fire_event == nil then
      return 501, "events are not available"
    end
    if type(data) == "table" and getmetatable(data) == infotable_methods then data = data:toTable() end
    return fire_event(tostring(name), data or {})
  end,
  -- server.invoke(service, params) -> status, body (JSON text)
  invoke = function(service, params)
    if invoke == nil then
      return 501, "the EMS is not available"
    end
    if type(params) == "table" and getmetatable(params) == infotable_methods then params = params:toTable() end
    return invoke(tostring(service), params or {})
  end,
}
tw_server = server

local function recorder(kind)
  return setmetatable({}, {
    __index = function(self, name)
      return function(...)
        local def
        if kind == "service" then
          def = { inputs = {}, output = nil, description = "", private = false }
          for i = 1, select('#', ...) do
            local part = select(i, ...)
            if type(part) == "table" then
              local k = part.__tether_kind
              if k == "input" then def.inputs[#def.inputs + 1] = part.def
              elseif k == "output" then def.output = part.def
              elseif k == "description" then def.description = part.text
              elseif k == "private" then def.private = part.flag and true or false
              end
            end
          end
        else
          def = setmetatable({ ... }, shape_methods)
        end
        rawset(self, name, def)
        return def
      end
    end,
  })
end

dataShapes = recorder("shape")
DataShape = dataShapes

tw_mutex = { lock = function() end, unlock = function() end }
ps_mutex = tw_mutex

local function toboolean(v)
  if type(v) == "boolean" then return v end
  if type(v) == "number" then return v ~= 0 end
  if type(v) == "string" then
    local s = v:lower()
    return s == "true" or s == "1" or s == "yes" or s == "on"
  end
  return false
end
tw_utils = { toboolean = toboolean }
ps_utils = tw_utils

package = { loaded = __tether_loaded }

-- me:setProperty(name, headers, query, data): the 'inmemory' handler.
local function setProperty(me, prop, headers, query, data)
  local pt = me.properties[prop]
  if type(pt) ~= "table" then
    return 404, format("Property '%s' not found", tostring(prop))
  end
  local value
  if type(data) == "table" then
    if type(data.rows) == "table" and type(data.rows[1]) == "table" then
      value = data.rows[1][prop]
    end
    if value == nil then value = data[prop] end
    if value == nil then value = data.value end
  else
    value = data
  end
  if value == nil then
    return 400, "Request to set property " .. tostring(prop) .. " did not contain valid data"
  end
  if pt.baseType == "BOOLEAN" then value = toboolean(value) end
  pt.value = value
  pt.time = now_ms()
  __tether_dirty[prop] = true
  return 200
end

local function getProperty(me, prop)
  local pt = me.properties[prop]
  if type(pt) ~= "table" then
    return 404, format("Property '%s' not found", tostring(prop))
  end
  return 200, pt.value
end

local function merge(dst, src)
  if type(src) ~= "table" then return end
  for k, v in pairs(src) do
    if rawget(dst, k) == nil then rawset(dst, k, v) end
  end
end

-- Gives a template (module table or returned table) everything the ThingWorx base offers.
-- Fields the template already set are kept.
local function extend(m)
  if rawget(m, "properties") == nil then rawset(m, "properties", {}) end
  if rawget(m, "services") == nil then rawset(m, "services", {}) end
  if rawget(m, "tasks") == nil then rawset(m, "tasks", {}) end
  if rawget(m, "serviceDefinitions") == nil then rawset(m, "serviceDefinitions", recorder("service")) end
  rawset(m, "me", m)
  rawset(m, "p_data", p_data)
  rawset(m, "name", p_data.name)
  if p_data.identifier then rawset(m, "identifier", "*" .. p_data.identifier) end
  rawset(m, "setProperty", setProperty)
  rawset(m, "getProperty", getProperty)
  rawset(m, "input", input)
  rawset(m, "output", output)
  rawset(m, "description", description)
  rawset(m, "private", private)
  rawset(m, "server", server)
  rawset(m, "tw_server", server)
  for name, t in pairs(__tether_loaded) do
    if type(name) == "string" and name:find("shapes%.") == 1 and type(t) == "table" then
      merge(m.properties, rawget(t, "properties"))
      merge(m.services, rawget(t, "services"))
      merge(m.tasks, rawget(t, "tasks"))
      merge(m.serviceDefinitions, rawget(t, "serviceDefinitions"))
    end
  end
end

thingworx = { template = { extend = extend }, shape = { extend = extend } }
__tether_extend = extend

-- A fresh environment for one Lua file (template or required shape): globals it sets stay
-- in it, reads fall back to the shared globals, and module(...) works as in Lua 5.1.
function __tether_new_env()
  local env = setmetatable({}, { __index = _G })
  env._M = env
  env.module = function(name, ...)
    env._NAME = name
    for i = 1, select('#', ...) do
      local f = select(i, ...)
      if type(f) == "function" then f(env) end
    end
    __tether_loaded[name] = env
    return env
  end
  return env
end
