-------------------------------------------------------------------------------
-- The same kind of device as a plain table: no module(), just return the parts.
-------------------------------------------------------------------------------
local properties = {
  Level = { baseType = "NUMBER", pushType = "VALUE", pushThreshold = 2, value = 0 },
  Mode  = { baseType = "STRING", pushType = "NEVER", value = "auto" },
}

return {
  properties = properties,

  serviceDefinitions = {
    Scale = {
      inputs = {
        { name = "x", baseType = "NUMBER", description = "value" },
        { name = "factor", baseType = "NUMBER", description = "factor" },
      },
      output = { baseType = "NUMBER", description = "x * factor" },
      description = "Multiplies",
    },
  },

  services = {
    Scale = function(me, headers, query, data)
      return 200, (data.x or 0) * (data.factor or 1)
    end,
  },

  tasks = {
    fill = function(me)
      me.properties.Level.value = (me.properties.Level.value + 1) % 50
    end,
  },
}
