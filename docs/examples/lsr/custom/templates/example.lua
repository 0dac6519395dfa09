-------------------------------------------------------------------------------
-- Example template in the ThingWorx LSR module style.
-- A NUMBER property changed by a task, a STRING property, and services with parameters.
-------------------------------------------------------------------------------
module ("templates.example", thingworx.template.extend)

properties.Temperature = { baseType = "NUMBER", pushType = "ALWAYS", value = 21.5 }
properties.Status      = { baseType = "STRING", pushType = "VALUE", value = "idle" }

serviceDefinitions.Add(
  input { name = "p1", baseType = "NUMBER", description = "first addend" },
  input { name = "p2", baseType = "NUMBER", description = "second addend" },
  output { baseType = "NUMBER", description = "sum" },
  description { "Adds two numbers" }
)

services.Add = function(me, headers, query, data)
  if not data.p1 or not data.p2 then
    return 400, "You must provide the parameters p1 and p2"
  end
  return 200, data.p1 + data.p2
end

serviceDefinitions.SetStatus(
  input { name = "status", baseType = "STRING", description = "new status" },
  output { baseType = "STRING", description = "the status set" },
  description { "Sets the Status property" }
)

services.SetStatus = function(me, headers, query, data)
  local code, msg = me:setProperty("Status", nil, nil, { value = data.status })
  if code ~= 200 then return code, msg end
  log.info(me.name, "status set to %s", data.status)
  return 200, data.status
end

serviceDefinitions.Echo(
  input { name = "s", baseType = "STRING", description = "text" },
  output { baseType = "STRING", description = "the same text" }
)

services.Echo = function(me, headers, query, data)
  return 200, data.s
end

-- Runs every taskRate: the temperature rises by half a degree, then starts again.
tasks.warmUp = function(me)
  local t = properties.Temperature.value + 0.5
  if t > 100 then t = 21.5 end
  properties.Temperature.value = t
end

-- An INFOTABLE result built from a declared data shape (ThingWorx style).
dataShapes.Reading(
  { name = "Temperature", baseType = "NUMBER" },
  { name = "Status", baseType = "STRING" }
)

serviceDefinitions.GetReading(
  output { baseType = "INFOTABLE", description = "current values", aspects = { dataShape = "Reading" } },
  description { "Returns the current values as an InfoTable" }
)

services.GetReading = function(me, headers, query, data)
  local it = tw_infotable.createInfoTable(DataShape.Reading:clone())
  local ok, err = it:addRow({ Temperature = properties.Temperature.value, Status = properties.Status.value })
  if not ok then return 400, err end
  return 200, it
end

-- Fires the Alarm event (the EMS forwards it to the platform).
dataShapes.AlarmEvent(
  { name = "message", baseType = "STRING" },
  { name = "temperature", baseType = "NUMBER" }
)

serviceDefinitions.RaiseAlarm(
  input { name = "message", baseType = "STRING", description = "what happened" },
  output { baseType = "NOTHING", description = "" },
  description { "Fires the Alarm event" }
)

services.RaiseAlarm = function(me, headers, query, data)
  local it = tw_infotable.createInfoTable(DataShape.AlarmEvent:clone())
  it:addRow({ message = data.message or "", temperature = properties.Temperature.value })
  return server.fireEvent("Alarm", it)
end
