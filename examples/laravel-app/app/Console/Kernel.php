<?php

namespace App\Console;

use App\Console\Commands\DispatchRun;
use App\Console\Commands\Tick;
use Illuminate\Console\Scheduling\Schedule;
use Illuminate\Foundation\Console\Kernel as ConsoleKernel;

class Kernel extends ConsoleKernel
{
    protected $commands = [DispatchRun::class, Tick::class];

    protected function schedule(Schedule $schedule)
    {
        $schedule->command('panel:tick')->everyMinute();
    }

    protected function commands()
    {
    }
}
